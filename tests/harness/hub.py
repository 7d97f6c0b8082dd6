"""A hub cache directory filled in huggingface_hub's layout, for offline resolution tests."""

REPO = "google/mobilebert-uncased"
COMMIT = "1f90a6c24c7879273a291d34a849033eba2dbc0f"


def fill_cache(cache_dir, commit=COMMIT, ref="main", files=None):
    """models--google--mobilebert-uncased/{refs/<ref>, snapshots/<commit>/<file>} as huggingface_hub writes it."""
    repo_dir = cache_dir / "models--google--mobilebert-uncased"
    (repo_dir / "refs").mkdir(parents=True, exist_ok=True)
    (repo_dir / "refs" / ref).write_text(commit)
    snapshot = repo_dir / "snapshots" / commit
    snapshot.mkdir(parents=True, exist_ok=True)
    for name, text in (files or {}).items():
        (snapshot / name).write_text(text)
    return snapshot
