"""The plugin template builds into a wheel that a fresh environment installs beside the core:
``megatron plugins`` lists it, its layer works in a pipeline that saves and reloads, and its
own tests pass with only the core and the template installed."""

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "examples" / "megatron-plugin-template"

USE_IT = textwrap.dedent("""
    import numpy as np, megatron
    x = megatron.nodes.Input("x", (2,))
    scaled = megatron.layers.MaxAbsScale()(x, "scaled")
    megatron.metrics.MaxError()([x, scaled], "worst")
    pipeline = megatron.Pipeline(x, scaled, name="template")
    data = {"x": np.array([[1.0, -4.0], [2.0, 2.0]])}
    pipeline.fit(data)
    path = pipeline.save(".")
    loaded = megatron.load_pipeline(path)
    assert np.array_equal(loaded.transform(data)["scaled"], [[0.5, -1.0], [1.0, 0.5]])
    print("ok", loaded.evaluate(data)["worst"])
""")


def test_template_wheel_installs_and_works_in_a_fresh_environment(tmp_path):
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(TEMPLATE)],
        check=True,
        capture_output=True,
    )
    (wheel,) = wheels.glob("megatron_template-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    subprocess.run(
        [python, "-m", "pip", "install", "-q", str(ROOT / "packages" / "megatron-core"), f"{wheel}[test]"],
        check=True,
        capture_output=True,
    )

    plugins = subprocess.run(
        [str(venv / "bin" / "megatron"), "plugins"], check=True, capture_output=True, text=True
    )
    assert "template (megatron-template 0.1.0)" in plugins.stdout
    assert "layer: MaxAbsScale" in plugins.stdout

    used = subprocess.run([python, "-c", USE_IT], check=True, capture_output=True, text=True, cwd=tmp_path)
    assert used.stdout.startswith("ok")

    tests = subprocess.run(
        [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(TEMPLATE / "tests")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert " passed" in tests.stdout
