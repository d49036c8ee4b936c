"""`brickwork build`, `bricks` and `models` as a user runs them (what they say to bad input and
which files they replace are checked in this process: `run_here`)."""

from pathlib import Path

import pytest
from command_line import EXAMPLES, run, run_here

import brickwork


def test_build_prints_the_tree_and_the_output_shape(tmp_path: Path) -> None:
    out = tmp_path / "normalised.yaml"
    result = run("build", str(EXAMPLES / "guide_classifier.yaml"), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "input (1, 28, 28) -> output (10,), 51,930,186 parameters" in result.stdout
    assert "Linear" in result.stdout
    assert "51,381,248" in result.stdout  # the first dec_block's Linear, in_features inferred
    spec = brickwork.load_spec(out)
    assert spec["model"][3] == {"dec_block": {"in_f": 50176, "out_f": 1024}}
    assert brickwork.count_params(brickwork.build(out)) == 51_930_186


def test_build_with_an_input_shape(tmp_path: Path) -> None:
    result = run("build", str(EXAMPLES / "guide_family.yaml"), "--input-shape", "3,32,32")
    assert result.returncode == 0, result.stderr
    assert "input (3, 32, 32) -> output (10,)" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("build", "missing.yaml"), "error: spec file not found: missing.yaml"),
        (
            ("build", "examples/mlp.yaml", "--input-shape", "1,a"),
            "--input-shape: expected comma-separated positive integers",
        ),
        (
            ("bricks", "conv_blok"),
            "error: unknown brick, family, activation or norm 'conv_blok'; did you mean 'conv_block'?",
        ),
    ],
)
def test_bad_input_is_one_line_and_status_2(args: tuple[str, ...], message: str) -> None:
    result = run_here(*args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_a_bad_spec_names_the_path_and_hints(tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text(
        "input: [1, 28, 28]\nmodel:\n  - flatten\n  - conv2d: {out: 8, kernel_size: 3}\n"
    )
    result = run_here("build", str(spec))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith(
        "error: model[1].conv2d: needs input of shape (C, H, W) but receives (784,)"
    )
    assert lines[1].startswith("hint: move it before the flatten")
    debug = run("--debug", "build", str(spec))
    assert "Traceback" in debug.stderr


def test_bricks_lists_every_kind() -> None:
    result = run("bricks")
    assert result.returncode == 0
    for heading in ("bricks:", "families:", "activations:", "norms:", "containers:"):
        assert heading in result.stdout
    for name in (
        "conv_block",
        "dec_block (linear_block)",
        "cnn_classifier",
        "lrelu (leaky_relu, leakyrelu)",
        "groupnorm",
    ):
        assert name in result.stdout


@pytest.mark.parametrize(
    ("name", "lines"),
    [
        (
            "Conv2d",
            [
                "conv2d (brick)",
                "in_channels            inferred: the incoming channels (dimension 0)",
                "out_channels           required; `out:` in a spec",
                "kernel_size            required",
                "padding                0",
            ],
        ),
        (
            "cat",
            [
                "concat (brick), also: cat",
                "takes two or more inputs, named in a graph spec: from: [a, b]",
                "dim                    1",
            ],
        ),
    ],
)
def test_bricks_describes_one_entry(name: str, lines: list[str]) -> None:
    result = run_here("bricks", name)
    assert result.returncode == 0
    assert result.stdout.startswith(lines[0])
    for line in lines[1:]:
        assert line in result.stdout


def test_build_out_replaces_only_a_spec_it_wrote(tmp_path: Path) -> None:
    out = tmp_path / "notes.yaml"
    out.write_text("my notes: keep them\n")
    spec = str(EXAMPLES / "mlp.yaml")
    refused = run_here("build", spec, "--out", str(out))
    assert refused.returncode == 2
    assert "notes.yaml exists and is not a brickwork spec: it was not replaced" in refused.stderr
    assert out.read_text() == "my notes: keep them\n"
    assert run_here("build", spec, "--out", str(out), "--overwrite").returncode == 0
    assert brickwork.load_spec(out)["output"]
    again = run_here("build", spec, "--out", str(out))  # a normalised spec of brickwork's: replaced
    assert again.returncode == 0, again.stderr


def test_build_prints_a_graphs_inputs_and_outputs() -> None:
    result = run("build", str(EXAMPLES / "two_inputs.yaml"))
    assert result.returncode == 0, result.stderr
    assert "inputs image (3, 32, 32), features (8,) -> output (10,), 8,458 parameters" in (
        result.stdout
    )
    assert "(joined) <- pooled, features: Concat(dim=1)" not in result.stdout  # a tree, not repr
    assert "joined: Concat" in result.stdout


def test_build_refuses_a_yaml_alias_bomb_at_once(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.yaml"
    lines = ['a: &a ["relu", "relu", "relu", "relu", "relu", "relu", "relu", "relu", "relu"]']
    pairs = zip("abcdefgh", "bcdefghi", strict=True)
    lines += [f"{n}: &{n} [{', '.join([f'*{p}'] * 9)}]" for p, n in pairs]
    bomb.write_text("\n".join([*lines, "input: [4]", "model: *i"]))
    result = run("build", str(bomb))
    assert result.returncode == 2
    assert f"error: {bomb}: more than 200,000 values once its aliases are expanded" in result.stderr
    assert "Traceback" not in result.stderr


SKIP_CLASSIFIER = """\
inputs:
  image: [1, 8, 8]               # the digits' shape; train sets it from the data anyway
model:
  - {name: stem, conv_block: {out: 8, kernel_size: 3, padding: 1}, from: image}
  - {name: deeper, conv_block: {out: 8, kernel_size: 3, padding: 1}}
  - {name: joined, add: null, from: [stem, deeper]}
  - maxpool2d: {kernel_size: 2}
  - flatten
  - {name: head, linear: {out: 10}}
"""


@pytest.mark.slow  # a training run and an export, each its own process
def test_a_graph_spec_trains_and_exports(tmp_path: Path) -> None:
    spec = tmp_path / "skip.yaml"
    spec.write_text(SKIP_CLASSIFIER)
    out = tmp_path / "run"
    result = run("train", str(spec), "--epochs", "1", "--batch-size", "256", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Graph: ")
    model = brickwork.load(out / "model.safetensors")
    assert isinstance(model, brickwork.spec.Graph)
    assert next(iter(model.state_dict())) == "stem.0.weight"
    result = run("export", str(out), "--format", "pt2")
    assert result.returncode == 0, result.stderr
    assert (out / "model.pt2").is_file()


@pytest.mark.parametrize(
    ("example", "said"),
    [
        ("two_inputs.yaml", "the model takes 2 inputs (image, features)"),
        ("two_heads.yaml", "the model returned a dict of 2 outputs (logits, box), expected one"),
    ],
)
def test_train_refuses_a_model_of_two_inputs_or_two_outputs(
    tmp_path: Path, example: str, said: str
) -> None:
    result = run_here("train", str(EXAMPLES / example), "--epochs", "1", "--out", str(tmp_path))
    assert result.returncode == 2
    assert said in result.stderr
    assert "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []  # refused before anything is written


def test_a_graph_with_an_unread_branch_builds_with_a_warning_line(tmp_path: Path) -> None:
    spec = tmp_path / "unread.yaml"
    spec.write_text(
        "input: [4]\n"
        "model:\n"
        "  - {linear: {out: 3}, name: a}\n"
        "  - {linear: {out: 3}, name: b, from: input}\n"
        "  - {linear: {out: 2}, name: c, from: b}\n"
        "outputs: c\n"
    )
    result = run("build", str(spec))
    assert result.returncode == 0, result.stderr
    assert result.stderr.startswith("warning: model.a: its output is never read")
    assert "SpecWarning" not in result.stderr


HAND_WRITTEN = """\
# my model, with the sizes I worked out
input: [1, 8, 8]
model:
- flatten: {}
- linear: {in_features: 64, out_features: 10}  # 64 = 8 * 8
output: [10]
"""


def test_build_out_keeps_a_spec_written_or_edited_by_hand(tmp_path: Path) -> None:
    spec = str(EXAMPLES / "mlp.yaml")
    hand = tmp_path / "hand.yaml"
    hand.write_text(HAND_WRITTEN)
    edited = tmp_path / "edited.yaml"
    assert run_here("build", spec, "--out", str(edited)).returncode == 0
    edited.write_text(edited.read_text() + "# my note\n")
    for target in (hand, edited):
        before = target.read_text()
        refused = run_here("build", spec, "--out", str(target))
        assert refused.returncode == 2
        assert f"{target.name} exists and is not a brickwork spec" in refused.stderr
        assert target.read_text() == before
