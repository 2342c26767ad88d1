"""Wait until a URL answers 200: `python scripts/wait_http.py URL SECONDS` (exit 0 when it does, 1 if not).

Used by scripts/run-local.sh to say "ready" only once the web server really serves.
"""

import sys
import time
import urllib.error
import urllib.request


def wait_for(url: str, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return True
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    return False


if __name__ == "__main__":
    url, seconds = sys.argv[1], float(sys.argv[2])
    if not wait_for(url, seconds):
        print(f"{url} did not answer within {seconds:.0f} s", file=sys.stderr)
        sys.exit(1)
