"""Say clearly, before anything starts, whether the weights the engine will load are present and trained.

`python scripts/check_weights.py` reads the same configuration as the app (environment and defaults)
and exits 0 when every weights file is present and matches its card, 2 otherwise. It reads files and
model cards only: no TensorFlow, so it answers in a fraction of a second.
"""

import json
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))  # run as a script from scripts/: make the package importable

from breastapp.config import build_config, missing_weights, weights_names  # noqa: E402


def main() -> int:
    config = build_config(REPO_ROOT / "instance")
    models_dir = Path(config["MODELS_DIR"])
    names = weights_names(config)
    problems = missing_weights(models_dir, names)
    if problems:
        lines = [
            "",
            "!" * 78,
            f"  The trained weights are missing from {models_dir}:",
            *(f"    - {problem}" for problem in problems),
            "  The web server starts, but every analysis will fail until they are there.",
            "  Produce them with `python -m breastapp retrain-all`, or point BREASTAPP_MODELS_DIR",
            "  at a folder that holds them.",
            "!" * 78,
            "",
        ]
        print("\n".join(lines), file=sys.stderr)
        return 2
    untrained = [name for name in names if not _card(models_dir, name).get("trained", True)]
    if untrained:
        print(
            f"warning: {', '.join(untrained)} in {models_dir} are initialised, not trained: "
            "results will carry the note 'untrained weights'.",
            file=sys.stderr,
        )
    return 0


def _card(models_dir: Path, name: str) -> dict:
    return json.loads((models_dir / f"{name}.json").read_text())


if __name__ == "__main__":
    sys.exit(main())
