"""A real-music library from Debian's packages of freely licensed game soundtracks.

``services/real-music.sh [DEST]`` (default ``.earshot/real-music``) fetches the
packages with ``apt-get download`` (no root needed, nothing is installed on
the system), unpacks them with ``dpkg-deb -x`` into a scratch folder and lays
the recordings out as ``DEST/<Artist>/<Album>/NN Title.<ext>``: full-length
Ogg Vorbis and Opus files, 2 to 11 minutes each. Each file is tagged (Vorbis
comments, with mutagen) with its title, artist and album from the package's
own metadata, and with the package's label as its genre, so a recommender's
quality can be judged against a label per package. A second run with the
files in place does nothing.

| package | label (genre) | what it holds |
|---|---|---|
| singularity-music | Singularity | Endgame: Singularity's soundtrack, Ogg Vorbis, tagged |
| warzone2100-music | Warzone 2100 | three albums, Opus, titles in each album's album.json |
| ufoai-music | UFO: Alien Invasion | one pk3 (zip) of Ogg Vorbis files |

All three are licensed for redistribution (CC BY-SA, GPL); each package's
copyright file is kept as ``DEST/<label>.copyright``.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from conf.settings import REPO_ROOT

PACKAGES = {
    "singularity-music": "Singularity",
    "warzone2100-music": "Warzone 2100",
    "ufoai-music": "UFO: Alien Invasion",
}
AUDIO = (".ogg", ".opus")


@dataclass(frozen=True)
class Recording:
    source: Path
    title: str
    artist: str
    album: str
    label: str
    number: int


def safe_name(text: str) -> str:
    """A file or folder name from a title: no path separators, no leading dots, at most 120 characters."""
    text = re.sub(r"[/\\:\x00-\x1f]+", " - ", text).strip().lstrip(".")
    return re.sub(r"\s+", " ", text)[:120] or "Untitled"


def _tag(path: Path, key: str) -> str | None:
    import mutagen

    audio = mutagen.File(path, easy=True)
    values = audio.tags.get(key) if audio is not None and audio.tags else None
    return str(values[0]) if values else None


def singularity(root: Path, label: str) -> Iterator[Recording]:
    for n, path in enumerate(sorted(root.glob("usr/share/games/singularity/music/**/*.ogg")), 1):
        yield Recording(
            path,
            _tag(path, "title") or path.stem,
            _tag(path, "artist") or "Singularity",
            _tag(path, "album") or "Endgame: Singularity",
            label,
            n,
        )


def warzone(root: Path, label: str) -> Iterator[Recording]:
    for album_dir in sorted(root.glob("usr/share/games/warzone2100/music/albums/*")):
        meta_file = album_dir / "album.json"
        meta = json.loads(meta_file.read_text()) if meta_file.exists() else {}
        by_file = {t.get("filename"): t for t in meta.get("tracks", [])}
        album = meta.get("title") or album_dir.name.replace("_", " ").title()
        for n, path in enumerate(sorted(album_dir.glob("*.opus")), 1):
            track = by_file.get(path.name, {})
            artist = track.get("author") or meta.get("author") or "Warzone 2100 Project"
            yield Recording(path, track.get("title") or path.stem, artist, album, label, n)


def ufoai(root: Path, label: str, scratch: Path) -> Iterator[Recording]:
    for pk3 in sorted(root.glob("usr/share/games/ufoai/base/*music*.pk3")):
        with zipfile.ZipFile(pk3) as z:
            names = sorted(n for n in z.namelist() if n.lower().endswith(".ogg"))
            for n, name in enumerate(names, 1):
                out = scratch / "ufoai" / Path(name).name
                out.parent.mkdir(parents=True, exist_ok=True)
                with z.open(name) as src, open(out, "wb") as dst:
                    shutil.copyfileobj(src, dst)
                yield Recording(
                    out,
                    _tag(out, "title") or Path(name).stem,
                    _tag(out, "artist") or "UFO: AI team",
                    "UFO: Alien Invasion",
                    label,
                    n,
                )


def place(rec: Recording, dest: Path) -> Path:
    """Copy one recording into ``dest/<Artist>/<Album>/NN Title.ext`` and tag it."""
    import mutagen

    out = (
        dest
        / safe_name(rec.artist)
        / safe_name(rec.album)
        / f"{rec.number:02d} {safe_name(rec.title)}{rec.source.suffix}"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(rec.source, out)
    audio = mutagen.File(out, easy=True)
    if audio is None:
        raise RuntimeError(f"{rec.source}: not an audio file mutagen can tag")
    if audio.tags is None:
        audio.add_tags()
    audio["title"], audio["artist"], audio["album"] = rec.title, rec.artist, rec.album
    audio["genre"], audio["tracknumber"] = rec.label, str(rec.number)
    audio.save()
    return out


def build(dest: Path, debs: Path) -> int:
    """Fetch, unpack and lay out every package; the number of recordings in ``dest``."""
    debs.mkdir(parents=True, exist_ok=True)
    wanted = [p for p in PACKAGES if not list(debs.glob(f"{p}_*.deb"))]
    if wanted:
        subprocess.run(["apt-get", "download", *wanted], cwd=debs, check=True)  # noqa: S603, S607
    dest.mkdir(parents=True, exist_ok=True)
    count = 0
    with tempfile.TemporaryDirectory(prefix="earshot-real-music-") as tmp:
        for package, label in PACKAGES.items():
            deb = sorted(debs.glob(f"{package}_*.deb"))[-1]
            root = Path(tmp) / package
            subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)  # noqa: S603, S607
            copyright_file = root / "usr/share/doc" / package / "copyright"
            if copyright_file.exists():
                shutil.copyfile(copyright_file, dest / f"{safe_name(label)}.copyright")
            if package == "singularity-music":
                recordings = list(singularity(root, label))
            elif package == "warzone2100-music":
                recordings = list(warzone(root, label))
            else:
                recordings = list(ufoai(root, label, Path(tmp) / "scratch"))
            for rec in recordings:
                place(rec, dest)
            print(f"real-music: {len(recordings):3d} recordings of {package} ({label})")  # noqa: T201
            count += len(recordings)
    return count


class Unavailable(RuntimeError):
    """The library cannot be built here; the message says why."""


def ensure(dest: Path, *, force: bool = False) -> int:
    """The library in ``dest``, built unless it is complete (``force``: again); how many recordings it holds,
    or :class:`Unavailable` with the reason (not Debian, or no package mirror reachable)."""
    done = dest / ".complete"
    if done.exists() and not force:
        return recordings_in(dest)
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        raise Unavailable("it needs Debian's apt-get and dpkg-deb")
    if force and done.exists():
        shutil.rmtree(dest)  # a library this script laid out: nothing of the user's is in it
    try:
        n = build(dest, REPO_ROOT / ".earshot" / "real-music-debs")
    except subprocess.CalledProcessError as exc:
        command = " ".join(map(str, exc.cmd[:2]))
        raise Unavailable(f"{command} failed (exit {exc.returncode}): is a Debian package mirror reachable?") from None
    done.write_text(f"{n}\n")
    return n


def recordings_in(dest: Path) -> int:
    return sum(1 for p in dest.rglob("*") if p.suffix.lower() in AUDIO)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="services/real-music.sh", description=__doc__.split("\n")[0])
    parser.add_argument(
        "dest", nargs="?", default=str(REPO_ROOT / ".earshot" / "real-music"), help="the library folder"
    )
    parser.add_argument("--force", action="store_true", help="lay the library out again even when it is there")
    args = parser.parse_args(argv)
    dest = Path(args.dest).resolve()
    if (dest / ".complete").exists() and not args.force:
        print(f"real-music: {recordings_in(dest)} recordings already in {dest}")  # noqa: T201
        return 0
    try:
        n = ensure(dest, force=args.force)
    except Unavailable as exc:
        print(f"real-music: cannot build the library: {exc}", file=sys.stderr)  # noqa: T201
        return 2
    print(f"real-music: {n} recordings in {dest}; ./spark-submit.sh demo plays them")  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
