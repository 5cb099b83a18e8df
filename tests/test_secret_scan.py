"""The secret scan CI runs (``make secret-scan``) catches a secret that is not in the baseline."""

import subprocess
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[1]
HOOK = Path(sys.executable).parent / "detect-secrets-hook"


def scan(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(HOOK), "--baseline", str(BASE_DIR / ".secrets.baseline"), str(path)],
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_planted_key_fails_the_scan(tmp_path):
    # Built at run time so that this file itself holds no secret.
    key = "AKIA" + "Z7Q4" + "MX2W" + "P9RT" + "KD3L"
    planted = tmp_path / "settings_local.py"
    planted.write_text(f'AWS_ACCESS_KEY_ID = "{key}"\ndb_password = "{key.lower()}x!9"\n')
    result = scan(planted)
    assert result.returncode != 0
    assert "AWS Access Key" in result.stdout


def test_a_clean_file_passes(tmp_path):
    clean = tmp_path / "module.py"
    clean.write_text("TIMEOUT = 10\n")
    assert scan(clean).returncode == 0
