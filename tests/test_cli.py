"""The real CLI end to end on a tiny synthetic grid: run, resume, kill and resume, validate, report, ls, schema."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from benchkit.cli import main


def invoke(*args):
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def fold_files(run_dir: Path) -> dict[str, str]:
    return {str(p.relative_to(run_dir)): p.read_text() for p in sorted(run_dir.glob("cells/*/fold-*.json"))}


def test_run_writes_everything_then_resumes_identically(tmp_path, write_grid, tiny_grid):
    tiny_grid["aggregator"] = ["mean", "frame-tokens"]
    tiny_grid["exclude"] = [{"level": "patch", "aggregator": "frame-tokens"}]
    grid = write_grid(tiny_grid)
    run_dir = tmp_path / "run"
    code, out, err = invoke("run", grid, "--run-dir", run_dir)
    assert code == 0, err
    assert "tiny: 3 cells x 2 folds = 6 folds (0 stored, 6 to run)" in err
    for name in ("grid.yaml", "plan.json", "environment.json", "leaderboard.md"):
        assert (run_dir / name).is_file()
    env = json.loads((run_dir / "environment.json").read_text())
    assert env["packages"]["torch"] and env["device"] == "cpu" and "git_commit" in env
    assert len(fold_files(run_dir)) == 6 * 2  # fold records + predictions
    board = (run_dir / "leaderboard.md").read_text()
    assert board == out.strip() + "\n"
    rows = [line for line in board.splitlines() if line.startswith("| ")]
    assert rows[0].startswith("| Level | Aggregator | Backbone | accuracy ↑")
    assert len(rows) == 1 + 3 + 2 and "| Random |" in rows[-2] and "| Majority |" in rows[-1]
    assert "**" in "".join(rows[1:4]) and "**" not in "".join(rows[4:])
    assert all(" ± " in r for r in rows[1:])

    before = fold_files(run_dir)
    code, out2, err2 = invoke("run", grid, "--run-dir", run_dir)
    assert code == 0 and "resuming: skipping 6 stored folds" in err2 and "0 folds run" in err2
    assert fold_files(run_dir) == before and out2 == out

    # a metric-free change to the grid file (a label) re-renders without retraining
    code, _out3, _ = invoke("run", grid, "--run-dir", run_dir, "report.decimals=1")
    assert code == 0 and fold_files(run_dir) == before


def test_same_grid_twice_gives_identical_numbers(tmp_path, write_grid, tiny_grid):
    grid = write_grid(tiny_grid)
    invoke("run", grid, "--run-dir", tmp_path / "a", "--no-progress")
    invoke("run", grid, "--run-dir", tmp_path / "b", "--no-progress")
    a, b = fold_files(tmp_path / "a"), fold_files(tmp_path / "b")
    metrics = [json.loads(v)["metrics"] for k, v in sorted(a.items()) if "pred" not in k]
    assert metrics == [json.loads(v)["metrics"] for k, v in sorted(b.items()) if "pred" not in k]
    assert (tmp_path / "a" / "leaderboard.md").read_text() == (tmp_path / "b" / "leaderboard.md").read_text()


def test_only_filter_and_report_formats(tmp_path, write_grid, tiny_grid):
    grid = write_grid(tiny_grid)
    run_dir = tmp_path / "run"
    code, _out, err = invoke("run", grid, "--run-dir", run_dir, "--only", "level=patch", "--no-progress")
    assert code == 0 and "1 cells x 2 folds" in err
    code, md, _ = invoke("report", run_dir)
    assert code == 0 and md == (run_dir / "leaderboard.md").read_text()
    code, csv, _ = invoke("report", run_dir, "--format", "csv")
    header, *lines = csv.strip().splitlines()
    assert header == "level,aggregator,backbone,baseline,folds,accuracy_mean,accuracy_ci95" and len(lines) == 3
    code, tex, _ = invoke("report", run_dir, "--format", "latex", "-o", tmp_path / "t.tex")
    tex = (tmp_path / "t.tex").read_text()
    assert r"\begin{tabular}" in tex and r"$\pm$" in tex and r"\textbf{" in tex


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda g: g.update(aggregator="meen"), "unknown aggregator 'meen'; did you mean 'mean'?"),
        (lambda g: g["train"].update(epoch=3), "train.epoch: unknown key"),
        (lambda g: g["backbone"].update(dims=3), "unexpected keyword 'dims'; did you mean 'dim'?"),
        (lambda g: g.update(aggregator="frame-tokens"), "does not support level 'patch'"),
        (lambda g: g.update(name="${BENCHKIT_TEST_UNSET}"), "BENCHKIT_TEST_UNSET is not set"),
        (lambda g: g.update(profile={"batch": 0}), "profile.batch: Input should be greater than or equal to 1 (got 0)"),
        (lambda g: g.update(profile={"foo": 1}), "profile.foo: unknown key"),
    ],
)
def test_user_mistakes_are_one_line_exit_2(write_grid, tiny_grid, mutate, message):
    mutate(tiny_grid)
    grid = write_grid(tiny_grid)
    for command in ("validate", "run"):
        code, out, err = invoke(command, grid)
        assert code == 2, (command, out, err)
        assert err.count("\n") == 1 and err.startswith("error: ") and message in err


def test_malformed_yaml_and_missing_paths(tmp_path, write_grid):
    code, _, err = invoke("validate", write_grid("name: x\n  bad: [\n"))
    assert code == 2 and "invalid YAML" in err and err.count("\n") == 1
    code, _, err = invoke("validate", tmp_path / "missing.yaml")
    assert code == 2 and "grid file not found" in err
    code, _, err = invoke("report", tmp_path / "nowhere")
    assert code == 2 and "run directory not found" in err
    code, _, err = invoke("run", write_grid({"name": "x"}), "train.epochs=")
    assert code == 2 and err.startswith("error: ")


def test_validate_lists_cells(write_grid, tiny_grid):
    code, out, _ = invoke("validate", write_grid(tiny_grid))
    assert code == 0 and "ok, 2 cells x 2 folds" in out and "level=patch" in out


def test_validate_shows_candidates_and_refuses_bad_ones_in_one_line(write_grid, tiny_grid):
    path = write_grid(tiny_grid)
    code, out, _ = invoke("validate", path, "train.lr={select: [1.0e-3, 3.0e-4]}")
    assert code == 0 and out.count("[2 candidates: train.lr]") == 2
    code, _, err = invoke("validate", path, "train.lr={select: [1.0e-3, 0]}")
    assert code == 2 and err.strip().splitlines() == [
        f"error: {path}: train.lr: candidate 0: Input should be greater than 0"]


def test_ls_plugins_schema():
    code, out, _ = invoke("ls", "aggregator")
    assert code == 0 and "mean" in out and "dataset" not in out
    code, out, _ = invoke("ls", "predictor", "*tiny")
    assert code == 0 and out.split()[1] == "prefix-gpt2-tiny"
    code, _, err = invoke("ls", "aggregators")
    assert code == 2 and "unknown kind" in err
    code, out, _ = invoke("plugins")
    assert code == 0 and "benchkit 0.1.0  aggregators.mean: aggregator:mean" in out
    code, out, _ = invoke("schema")
    schema = json.loads(out)
    assert schema["additionalProperties"] is False and "aggregator" in schema["properties"]
    from benchkit.grid.config import ProfileConfig  # the `profile:` section is typed: true/false or its fields

    assert {"type": "boolean"} in schema["properties"]["profile"]["anyOf"]
    fields = schema["$defs"]["ProfileConfig"]["properties"]
    assert list(fields) == list(ProfileConfig.model_fields) and all(f.get("description") for f in fields.values())
    assert fields["batch"]["minimum"] == 1 and fields["dtype"]["enum"] == ["float32", "bfloat16", "float16"]


def test_sigkill_loses_no_stored_fold(tmp_path, write_grid, tiny_grid):
    tiny_grid["protocol"]["folds"] = 3
    tiny_grid["train"]["epochs"] = 12
    grid = write_grid(tiny_grid)
    run_dir = tmp_path / "run"
    cmd = [sys.executable, "-m", "benchkit.cli", "run", str(grid), "--run-dir", str(run_dir), "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=os.environ.copy())
    deadline = time.time() + 120
    while time.time() < deadline and len(list(run_dir.glob("cells/*/fold-*[0-9].json"))) < 2:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    stored = {k: v for k, v in fold_files(run_dir).items() if "pred" not in k}
    assert 2 <= len(stored) < 6, "the kill should land mid-run"
    out = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())
    assert out.returncode == 0, out.stderr
    assert f"resuming: skipping {len(stored)} stored folds" in out.stderr
    after = fold_files(run_dir)
    assert all(after[k] == v for k, v in stored.items())  # nothing stored was rewritten
    assert len([k for k in after if "pred" not in k]) == 6
    assert not list(run_dir.rglob("*.tmp"))


def test_impossible_aggregator_input_is_one_line(tmp_path, write_grid, tiny_grid):
    tiny_grid["dataset"]["size"] = 28
    tiny_grid["backbone"].update(image_size=28, patch=4)  # a 7x7 patch grid cannot be merged 2x2
    tiny_grid["level"] = "patch"
    tiny_grid["aggregator"] = "invpatch-tiny"
    code, _, err = invoke("run", write_grid(tiny_grid), "--run-dir", tmp_path / "r", "--no-progress")
    assert code == 2 and err.strip().splitlines()[-1].startswith("error: aggregator 'invpatch' cannot be built")
    assert "7x7 cannot be merged 2x2" in err


def parameter_rows(markdown: str) -> dict[str, tuple[int, int, int]]:
    """``component → (total, trainable, frozen)`` from the Parameters table of ``benchkit profile``."""
    section = markdown.split("## Parameters", 1)[1].split("##", 1)[0]
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in section.splitlines() if line.startswith("| ")]
    return {c[0]: tuple(int(v.replace(",", "")) for v in c[1:]) for c in cells[2:]}  # after header, rule


def test_profile_parameter_counts_match_the_paper():
    args = ("-a", "invpatch-paper", "-p", "prefix-gpt2-paper", "--frames", "8", "--grid", "14x14")
    code, out, _ = invoke("profile", *args, "--no-flops", "--no-latency")  # shapes only, on the meta device
    assert code == 0
    counts = parameter_rows(out)
    assert counts["aggregator invpatch-paper"][0] == 44_936_448  # 44.94M (spec invpatch.md §1)
    assert counts["predictor prefix-gpt2-paper"][0] == 29_147_904  # 29.15M (spec §2)
    assert counts["total"] == (74_084_352, 74_084_352, 0)  # the paper's "74M trainable"
    assert "reproduce: `benchkit profile --aggregator invpatch-paper" in out
    code, out, _ = invoke("profile", "-a", "netvlad", "--level", "frame", "--frames", "16", "--no-flops",
                          "--no-latency")
    assert code == 0 and "4,731,656" in out  # Linear(6144, 768) + VLAD core
    code, _, err = invoke("profile", "-a", "invpatch", "--grid", "7x7", "--no-latency")
    assert code == 2 and "cannot be merged 2x2" in err


def test_profile_flops_json_and_grid_cells(write_grid, tiny_grid):
    args = ("-b", "random-vit-tiny", "-a", "invpatch-tiny", "-p", "prefix-gpt2-tiny", "--frames", "4",
            "--image-size", "16", "--seq-len", "3", "--no-latency", "--format", "json")
    code, out, _ = invoke("profile", *args)
    assert code == 0
    result = json.loads(out)
    flops = result["detail"]["flops"]
    assert set(flops) == {"backbone", "train_forward", "train_step", "inference", "inference_reference"}
    assert result["detail"]["input"]["features"] == {"level": "patch", "frames": 4, "grid": [4, 4], "dim": 64}
    assert result["summary"]["output_tokens"] == 5 and result["summary"]["gmacs"] * 2 == result["summary"]["gflops"]
    assert parameter_rows(invoke("profile", *args[:-2])[1])["backbone random-vit-tiny"][2] == 103_296  # frozen
    tiny_grid.update(level="patch", aggregator=["invpatch-tiny", "mean"])
    code, out, _ = invoke("profile", write_grid(tiny_grid), "--only", "aggregator=invpatch*", "--no-latency",
                          "--no-reference", "--format", "json")
    assert code == 0
    cells = json.loads(out)
    assert len(cells) == 1 and cells[0]["detail"]["labels"]["aggregator"] == "invpatch-tiny"
    assert cells[0]["detail"]["input"]["actions"] == cells[0]["summary"]["output_tokens"] - 2
    for bad, message in [(("-a", "mean", "--set", "aggregator.p"), "KIND.KEY=VALUE"),
                         ((write_grid(tiny_grid), "-a", "mean"), "either GRID_FILE or components"),
                         (("-p", "prefix-gpt2-tiny",), "name an aggregator")]:
        code, _, err = invoke("profile", *bad, "--no-latency")
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_every_profile_option_is_a_flag():
    """`benchkit profile`'s measurement options are generated from the grid's `profile:` fields (ProfileConfig):
    each field is a flag with its default and description, and a field added to the model adds its flag."""
    from typing import Literal

    from pydantic import Field

    from benchkit.cli import model_options, profile_flag
    from benchkit.grid.config import ProfileConfig

    params = {p.name: p for p in main.commands["profile"].params}
    for name, field in ProfileConfig.model_fields.items():
        param = params[profile_flag(name).replace("-", "_")]
        assert param.default == field.default and field.description[1:] in param.help, name
        assert param.opts == [f"--{profile_flag(name)}"]
    assert params["actions"].type.name == "integer" and "vocabulary" in params["actions"].help  # as before
    assert params["memory"].secondary_opts == ["--no-memory"]
    docs = (Path(__file__).parents[1] / "docs" / "profiling.md").read_text()  # the docs' one table lists them all
    assert all(f"| `{name}` | `--{profile_flag(name)}" in docs for name in ProfileConfig.model_fields)

    class More(ProfileConfig):
        knob: Literal["a", "b"] = Field("a", description="a new knob")
        rate: float | None = Field(None, description="a new rate")

    added = {o.name: o for o in model_options(More)}
    assert added["knob"].opts == ["--knob"] and list(added["knob"].type.choices) == ["a", "b"]
    assert added["rate"].type.name == "float" and added["rate"].default is None


def test_profile_flags_reach_the_options():
    code, out, _ = invoke("profile", "-a", "mean", "-p", "prefix-gpt2-tiny", "--frames", "2", "--grid", "2x2", "--dim",
                          "16", "--no-flops", "--no-memory", "--batch", "2", "--min-run-time", "0.01", "--warmup", "1",
                          "--format", "json")
    assert code == 0
    detail = json.loads(out)["detail"]
    assert detail["options"] == {"flops": False, "training": True, "latency": True, "memory": False,
                                 "backbone": True, "reference": True, "batch": 2, "device": "cpu",
                                 "dtype": "float32", "actions": 16, "min_run_time": 0.01, "warmup": 1, "seed": 0}
    assert all("peak_mem_mb" not in r for r in detail["latency"]) and len(detail["latency"]) == 2
    assert detail["command"].endswith("--no-flops --no-memory --batch 2 --min-run-time 0.01 --warmup 1 --format json")
    for flag, value in [("--batch", "0"), ("--seq-len", "0"), ("--device", "tpu"), ("--min-run-time", "0")]:
        code, _, err = invoke("profile", "-a", "mean", flag, value)
        assert code == 2 and err.startswith(f"error: {flag}: ") and err.count("\n") == 1


def test_profile_of_a_grid_starts_from_its_profile_section(write_grid, tiny_grid):
    """`benchkit profile GRID` measures with the grid's `profile:` options; a flag given on the command line wins."""
    tiny_grid.update(level="frame", aggregator=["mean"], profile={"latency": False, "memory": False, "batch": 3,
                                                                   "reference": False})
    grid = write_grid(tiny_grid)
    code, out, _ = invoke("profile", grid, "--no-flops", "--format", "json")
    assert code == 0
    options = json.loads(out)[0]["detail"]["options"]
    assert (options["latency"], options["memory"], options["batch"], options["reference"]) == (False, False, 3, False)
    assert options["flops"] is False  # the flag, over the grid's default
    code, out, _ = invoke("profile", grid, "--no-flops", "--batch", "5", "--format", "json")
    assert code == 0 and json.loads(out)[0]["detail"]["options"]["batch"] == 5


def test_the_cli_and_the_grid_schema_import_light():
    """Commands start without pydantic (profile's flags are made when it runs); the grid layer never needs torch."""
    code = ("import sys, benchkit.cli; assert 'pydantic' not in sys.modules; "
            "import benchkit.grid.config, benchkit.grid.plan; assert 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_every_fold_record_names_its_environment(tmp_path, write_grid, tiny_grid):
    """A resumed run may mix versions, so each fold keeps what produced it; the leaderboard names timm too."""
    from importlib import metadata

    from benchkit.storage.integrity import read_verified

    run_dir = tmp_path / "run"
    code, _, _ = invoke("run", write_grid(tiny_grid), "--run-dir", run_dir, "--only", "level=frame", "--no-progress")
    assert code == 0
    records = sorted(run_dir.glob("cells/*/fold-*.json"))
    records = [p for p in records if "predictions" not in p.name]
    assert records
    for path in records:
        assert read_verified(path)["environment"]["packages"]["timm"] == metadata.version("timm")
    assert f"timm {metadata.version('timm')}" in (run_dir / "leaderboard.md").read_text()
