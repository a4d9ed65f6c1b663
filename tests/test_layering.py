"""The package layering of DESIGN.md §1, checked on every import statement (inside functions too):
contracts at the bottom, the application (`boxflow`) on top, keras_models free of serving."""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
CONTRACTS, APPLICATION = "contracts", "boxflow"
PACKAGES = (CONTRACTS, "beam_jobs", "pipeline", "keras_models", "serving", APPLICATION)
# The project packages each package may import (itself always). The application may import all.
ALLOWED = {
    CONTRACTS: set(),
    "beam_jobs": {CONTRACTS},
    "pipeline": {CONTRACTS},
    "keras_models": {CONTRACTS, "pipeline"},
    "serving": {CONTRACTS, "pipeline", "keras_models"},
}
# serving imports keras_models only to load and export a trained model.
SERVING_MAY_IMPORT_FROM_KERAS_MODELS = {"serving/export.py": {"keras_models.runs.run_directory",
                                                              "keras_models.inference.detection_functions",
                                                              "keras_models.inference.segmentation_functions",
                                                              "keras_models.ops.box_uncertainty"}}


def project_imports(path: pathlib.Path) -> list[tuple[int, str]]:
    """`(line, dotted module)` of every import of a project package in the file at `path`."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found += [(node.lineno, name) for name in names if name.split(".")[0] in PACKAGES]
    return found


def layering_violations(root: pathlib.Path) -> list[str]:
    """Each import under `root` that breaks the layering, as `file:line imports module`."""
    violations = []
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            relative = path.relative_to(root).as_posix()
            for line, module in project_imports(path):
                top = module.split(".")[0]
                if package == APPLICATION or top == package:
                    continue
                if top not in ALLOWED[package]:
                    violations.append(f"{relative}:{line} imports {module}")
                elif package == "serving" and top == "keras_models" and \
                        module not in SERVING_MAY_IMPORT_FROM_KERAS_MODELS.get(relative, set()):
                    violations.append(f"{relative}:{line} imports {module}")
    return violations


def test_every_package_imports_only_the_packages_below_it():
    assert layering_violations(ROOT) == []


@pytest.mark.parametrize("package, module, rule", [
    (CONTRACTS, "pipeline.letterbox", "the contracts import no other package"),
    ("pipeline", "boxflow.synth", "no package imports the application"),
    ("keras_models", "serving.model_base", "keras_models never imports serving"),
    ("serving", "keras_models.training.train_job", "serving imports keras_models only to load and export"),
])
def test_the_check_finds_each_kind_of_violation(tmp_path, package, module, rule):
    for name in PACKAGES:
        (tmp_path / name).mkdir()
    (tmp_path / package / "inside.py").write_text(f"def late():\n    import {module}\n")
    assert layering_violations(tmp_path) == [f"{package}/inside.py:2 imports {module}"], rule
