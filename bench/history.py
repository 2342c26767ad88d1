"""How fast is the admin's prediction history with tens of thousands of analyses?

    python bench/history.py                                   # 50,000 analyses in a scratch SQLite file
    python bench/history.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench_history
    python bench/history.py --analyses 200000 --runs 7

Builds the schema with the real migrations (so the indexes measured are the shipped ones), bulk-inserts
users, studies, images and analyses with a realistic spread (two years of dates, a few busy
radiologists and many occasional ones, 85 % mammography, mostly done with some failures, log-normal
processing times), then times the real admin pages through the Flask test client, logged in as an
admin: the first history page unfiltered, with filters, sorted by a non-default column, a deep page,
and the CSV export. Prints the median of several runs for each. The database given with
--database-url must be empty (it is filled, not cleared); the default SQLite file is temporary.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))  # run as a script: make the package importable

from sqlalchemy import insert  # noqa: E402

from breastapp import create_app  # noqa: E402
from breastapp.extensions import db  # noqa: E402
from breastapp.orm import Analysis, Image, Study, User  # noqa: E402

ADMIN_PASSWORD = "bench-admin-password"
BATCH = 5000
HISTORY_DAYS = 730
# (verdict, weight) per modality for finished analyses, roughly a screening population.
VERDICTS = {
    "MG": (("no_suspicious_lesion", 0.62), ("benign", 0.27), ("malignant", 0.11)),
    "US": (("normal", 0.30), ("benign", 0.47), ("malignant", 0.23)),
}
STATUSES = (("done", 0.955), ("failed", 0.03), ("queued", 0.01), ("running", 0.005))
ERRORS = (
    ("unsupported_transfer_syntax", "The DICOM compression is not supported."),
    ("too_many_attempts", "Gave up after 3 attempts."),
)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="an EMPTY database to fill (default: a temporary SQLite file)")
    parser.add_argument("--analyses", type=int, default=50_000)
    parser.add_argument("--users", type=int, default=40, help="radiologists (plus one admin)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per page (the median is printed)")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def build_app(database_url: str, work: Path):
    return create_app(
        {
            "ENV_NAME": "development",
            "SQLALCHEMY_DATABASE_URI": database_url,
            "BROKER_URL": "memory://",  # nothing is enqueued here
            "UPLOAD_DIR": str(work / "uploads"),
            "WTF_CSRF_ENABLED": False,  # the bench logs in with one POST; CSRF has its own tests
            "LOGIN_RATE_LIMIT": "1000 per minute",
        }
    )


def create_schema() -> None:
    from flask_migrate import upgrade

    upgrade()


def create_users(count: int) -> list[str]:
    """One admin and `count` radiologists; returns the radiologists' ids."""
    admin = User(email="admin@bench.invalid", username="admin", role="admin")
    admin.set_password(ADMIN_PASSWORD)
    radiologists = []
    for number in range(count):
        user = User(email=f"radiologist{number}@bench.invalid", username=f"radiologist{number:02d}")
        user.password_hash = admin.password_hash  # hashing 40 passwords would only time scrypt
        radiologists.append(user)
    db.session.add_all([admin, *radiologists])
    db.session.commit()
    return [user.id for user in radiologists]


def pick(rng: random.Random, weighted) -> str:
    values, weights = zip(*weighted, strict=True)
    return rng.choices(values, weights)[0]


def fill(user_ids: list[str], analyses: int, rng: random.Random) -> None:
    """Bulk-insert studies of 1-4 images, one analysis per image, in batches (executemany)."""
    now = datetime.now(UTC)
    # A few busy radiologists read most studies (Zipf-like weights).
    user_weights = [1 / (rank + 1) for rank in range(len(user_ids))]
    studies, images, rows = [], [], []
    made = 0
    while made < analyses:
        study_id, owner = str(uuid.uuid4()), rng.choices(user_ids, user_weights)[0]
        created = now - timedelta(days=rng.uniform(0, HISTORY_DAYS))
        modality = "MG" if rng.random() < 0.85 else "US"
        studies.append({"id": study_id, "owner_id": owner, "label": None, "created_at": created})
        views = min(rng.choice((1, 2, 4, 4)) if modality == "MG" else 1, analyses - made)
        for view_number in range(views):
            image, analysis = make_image_and_analysis(study_id, owner, modality, view_number, created, rng)
            images.append(image)
            rows.append(analysis)
        made += views
        if len(rows) >= BATCH:
            flush(studies, images, rows)
    flush(studies, images, rows)


def make_image_and_analysis(study_id, owner, modality, view_number, created, rng):
    image_id = str(uuid.uuid4())
    image = {
        "id": image_id,
        "study_id": study_id,
        "stored_name": f"{image_id}.png",
        "sha256": uuid.uuid4().hex * 2,
        "size_bytes": rng.randint(200_000, 30_000_000),
        "format": "DICOM" if modality == "MG" else "PNG",
        "modality": modality,
        "view": ("CC", "MLO")[view_number % 2] if modality == "MG" else None,
        "laterality": ("L", "R")[view_number // 2 % 2],
        "rows": 3328,
        "cols": 2560,
        "spacing_row_mm": 0.1,
        "spacing_col_mm": 0.1,
        "created_at": created,
    }
    status = pick(rng, STATUSES)
    analysis = {
        "id": str(uuid.uuid4()),
        "image_id": image_id,
        "user_id": owner,
        "status": status,
        "attempts": 0 if status == "queued" else 1,
        "created_at": created,
        "error_code": None,
        "error_message": None,
        "verdict": None,
        "image_malignancy_prob": None,
        "processing_s": None,
        "started_at": None,
        "finished_at": None,
    }
    if status in ("done", "failed", "running"):
        analysis["started_at"] = created + timedelta(seconds=rng.uniform(0.05, 3))
    if status == "done":
        seconds = rng.lognormvariate(0.4, 0.5)  # median about 1.5 s
        verdict = pick(rng, VERDICTS[modality])
        analysis.update(
            verdict=verdict,
            processing_s=round(seconds, 3),
            image_malignancy_prob=rng.uniform(0.5, 1) if verdict == "malignant" else rng.uniform(0, 0.5),
            finished_at=analysis["started_at"] + timedelta(seconds=seconds),
        )
    elif status == "failed":
        code, message = rng.choice(ERRORS)
        analysis.update(
            error_code=code,
            error_message=message,
            processing_s=round(rng.uniform(0.01, 2), 3),
            finished_at=analysis["started_at"] + timedelta(seconds=1),
        )
    return image, analysis


def flush(studies: list, images: list, rows: list) -> None:
    for table, batch in ((Study, studies), (Image, images), (Analysis, rows)):
        if batch:
            db.session.execute(insert(table), batch)
            batch.clear()
    db.session.commit()


def time_get(client, url: str, runs: int) -> tuple[float, int]:
    """Median seconds of `runs` GETs of `url` (after one warm-up), and the body size."""
    size = len(check(client.get(url), url).data)
    durations = []
    for _ in range(runs):
        started = time.perf_counter()
        check(client.get(url), url).get_data()
        durations.append(time.perf_counter() - started)
    return statistics.median(durations), size


def check(response, url: str):
    if response.status_code != 200:
        raise SystemExit(f"GET {url} answered {response.status_code}")
    return response


def cases(busy_user: str, today: datetime) -> list[tuple[str, str]]:
    last_month = (today - timedelta(days=30)).date().isoformat()
    last_year = (today - timedelta(days=365)).date().isoformat()
    return [
        ("history, no filter, newest first", "/admin/history"),
        ("history, last 30 days", f"/admin/history?from={last_month}"),
        (
            "history, MG + malignant + done, last year",
            f"/admin/history?modality=MG&verdict=malignant&status=done&from={last_year}",
        ),
        ("history, one radiologist", f"/admin/history?user={busy_user}"),
        ("history, sorted by processing time", "/admin/history?sort=-processing_s"),
        ("history, page 200", "/admin/history?page=200"),
        ("CSV export, one radiologist + US", f"/admin/history.csv?user={busy_user}&modality=US"),
        ("CSV export, everything", "/admin/history.csv"),
    ]


def main(argv=None) -> int:
    args = parse_args(argv)
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="bench-history-") as folder:
        work = Path(folder)
        database_url = args.database_url or f"sqlite:///{work / 'history.sqlite3'}"
        app = build_app(database_url, work)
        with app.app_context():
            create_schema()
            started = time.perf_counter()
            user_ids = create_users(args.users)
            fill(user_ids, args.analyses, rng)
            fill_s = time.perf_counter() - started
            total = db.session.query(Analysis).count()
        print(
            f"database: {app.config['SQLALCHEMY_DATABASE_URI'].split('://')[0]}; {total} analyses "
            f"filled in {fill_s:.1f} s; median of {args.runs} runs per line",
            flush=True,
        )
        client = app.test_client()
        check_login(client)
        for label, url in cases(user_ids[0], datetime.now(UTC)):
            seconds, size = time_get(client, url, args.runs)
            print(f"  {label:<45} {seconds * 1000:9.1f} ms  {size / 1024:9.1f} KiB", flush=True)
    return 0


def check_login(client) -> None:
    answer = client.post("/login", data={"login": "admin", "password": ADMIN_PASSWORD})
    if answer.status_code not in (302, 303):
        raise SystemExit(f"admin login answered {answer.status_code}")


if __name__ == "__main__":
    sys.exit(main())
