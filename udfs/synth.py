"""Synthetic but musical audio for the sample library: genres that really sound different.

Each genre has its own timbre (waveforms, distortion, filter brightness), tempo
range, rhythm (drum patterns, swing, or none) and harmony (scale, chord
voicing). Each artist fixes a key, a tempo and a variant of the genre's sound,
so an artist's tracks resemble each other more than their genre's. Pure numpy:
no I/O, deterministic for a seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import lfilter

SCALES: dict[str, tuple[int, ...]] = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
    "pentatonic": (0, 3, 5, 7, 10),
    "chromatic": tuple(range(12)),
}
# 16-step patterns: kick, snare, hat. "" means no drums.
PATTERNS: dict[str, tuple[str, str, str]] = {
    "four_on_floor": ("x...x...x...x...", "....x.......x...", "..x...x...x...x."),
    "rock": ("x.......x.x.....", "....x.......x...", "x.x.x.x.x.x.x.x."),
    "boom_bap": ("x......x..x.....", "....x.......x...", "x.x.x.x.x.x.x.x."),
    "swing": ("x.........x.....", "............x...", "x..xx..xx..xx..x"),
    "pop": ("x.......x.......", "....x.......x...", "x.x.x.x.x.x.x.x."),
    "none": ("", "", ""),
}


@dataclass(frozen=True)
class GenreStyle:
    """How one genre sounds."""

    genre_id: int
    title: str
    bpm: tuple[int, int]
    scale: str
    lead: str  # waveform of the melody
    chords: str  # waveform of the harmony
    bass: str  # waveform of the bass, "" for none
    pattern: str
    cutoff_hz: float  # one-pole low-pass on the mix: brightness
    drive: float  # tanh distortion gain, 1 = clean
    notes_per_beat: float  # melody density
    noise: float  # share of filtered noise (texture)
    sub_genre: tuple[int, str]


GENRES: tuple[GenreStyle, ...] = (
    GenreStyle(
        15,
        "Electronic",
        (120, 132),
        "minor",
        "saw",
        "square",
        "square",
        "four_on_floor",
        7000,
        1.2,
        2.0,
        0.02,
        (181, "Techno"),
    ),
    GenreStyle(12, "Rock", (110, 150), "mixolydian", "saw", "power", "saw", "rock", 4500, 6.0, 1.0, 0.03, (25, "Punk")),
    GenreStyle(21, "Hip-Hop", (84, 96), "minor", "fm", "sine", "sine", "boom_bap", 2200, 1.5, 0.5, 0.01, (539, "Rap")),
    GenreStyle(
        17, "Folk", (88, 116), "major", "pluck", "pluck", "", "none", 3500, 1.0, 1.0, 0.0, (103, "Singer-Songwriter")
    ),
    GenreStyle(
        5,
        "Classical",
        (60, 80),
        "major",
        "strings",
        "strings",
        "strings",
        "none",
        2500,
        1.0,
        0.5,
        0.0,
        (187, "Romantic"),
    ),
    GenreStyle(4, "Jazz", (130, 170), "dorian", "organ", "organ", "pluck", "swing", 3000, 1.0, 1.5, 0.0, (74, "Bebop")),
    GenreStyle(
        38, "Experimental", (40, 200), "chromatic", "fm", "noise", "", "none", 9000, 2.0, 0.7, 0.25, (250, "Noise")
    ),
    GenreStyle(
        10, "Pop", (100, 120), "major", "square", "pluck", "sine", "pop", 5000, 1.0, 1.0, 0.01, (76, "Electropop")
    ),
)


@dataclass(frozen=True)
class ArtistSound:
    """An artist's fixed choices within their genre."""

    genre: GenreStyle
    root_midi: int
    bpm: float
    brightness: float  # multiplies the genre's cutoff
    lead_octave: int
    detune: float  # cents of chorus on the lead


def make_artist(genre: GenreStyle, rng: np.random.Generator) -> ArtistSound:
    lo, hi = genre.bpm
    return ArtistSound(
        genre=genre,
        root_midi=int(rng.integers(40, 52)),
        bpm=float(rng.uniform(lo, hi)),
        # Production styles vary: brightness overlaps across genres, as in real catalogues,
        # so no single number (the spectral centroid) tells genres apart.
        brightness=float(rng.uniform(0.45, 2.2)),
        lead_octave=int(rng.integers(1, 3)),
        detune=float(rng.uniform(0, 12)),
    )


def midi_hz(note: float) -> float:
    return 440.0 * 2 ** ((note - 69) / 12)


def _wave(kind: str, freq: float, t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    phase = freq * t
    if kind == "sine":
        return np.sin(2 * np.pi * phase)
    if kind == "saw":
        return 2 * (phase % 1.0) - 1
    if kind == "square":
        return np.sign(np.sin(2 * np.pi * phase)) * 0.6
    if kind == "power":  # root and fifth, as a distorted guitar plays
        return (2 * (phase % 1.0) - 1) + (2 * ((phase * 1.5) % 1.0) - 1)
    if kind == "fm":
        return np.sin(2 * np.pi * phase + 2.5 * np.sin(2 * np.pi * 2 * phase) * np.exp(-3 * t))
    if kind == "pluck":  # decaying harmonics: higher partials die first
        k = np.arange(1, 7)[:, None]
        return (np.sin(2 * np.pi * k * phase) * np.exp(-t * 4 * k) / k).sum(axis=0) * 1.5
    if kind == "organ":
        return np.sin(2 * np.pi * phase) + 0.5 * np.sin(4 * np.pi * phase) + 0.3 * np.sin(6 * np.pi * phase)
    if kind == "strings":  # slow vibrato, soft harmonics
        vib = 1 + 0.006 * np.sin(2 * np.pi * 5.5 * t)
        p = phase * vib
        return np.sin(2 * np.pi * p) + 0.35 * np.sin(4 * np.pi * p) + 0.2 * np.sin(6 * np.pi * p)
    if kind == "noise":
        return rng.standard_normal(len(t)) * 0.4
    raise ValueError(f"unknown waveform {kind!r}")


def _envelope(n: int, sr: int, *, attack: float, release: float) -> np.ndarray:
    env = np.ones(n)
    a = min(n, max(1, int(attack * sr)))
    r = min(n - a, max(1, int(release * sr)))
    env[:a] = np.linspace(0, 1, a)
    if r > 0:
        env[n - r :] = np.linspace(1, 0, r)
    return env


def _add_note(buf: np.ndarray, start: int, n: int, sig: np.ndarray) -> None:
    end = min(len(buf), start + n)
    if end > start:
        buf[start:end] += sig[: end - start]


def _drum(kind: str, sr: int, rng: np.random.Generator) -> np.ndarray:
    if kind == "kick":
        t = np.arange(int(0.18 * sr)) / sr
        return np.sin(2 * np.pi * (50 * t + 90 * (1 - np.exp(-t * 30)) / 30)) * np.exp(-t * 18) * 1.2
    if kind == "snare":
        t = np.arange(int(0.12 * sr)) / sr
        return (rng.standard_normal(len(t)) * 0.7 + np.sin(2 * np.pi * 190 * t)) * np.exp(-t * 30) * 0.6
    t = np.arange(int(0.04 * sr)) / sr
    noise = np.diff(rng.standard_normal(len(t) + 1))
    return noise * np.exp(-t * 90) * 0.25


def render_track(artist: ArtistSound, *, seconds: float, sr: int, seed: int, variation: float = 1.0) -> np.ndarray:
    """Render one track of ``seconds`` at ``sr``: float32 mono in [-1, 1].

    ``variation`` scales how far this track strays from its artist's sound.
    """
    rng = np.random.default_rng(seed)
    g = artist.genre
    n = int(seconds * sr)
    mix = np.zeros(n)
    bpm = artist.bpm * (1 + rng.uniform(-0.03, 0.03) * variation)
    beat = 60.0 / bpm
    scale = SCALES[g.scale]
    root = artist.root_midi + int(rng.integers(-2, 3) * variation)
    # A chord progression of scale degrees, one chord a bar.
    progression = rng.choice(len(scale), size=4, replace=True)
    progression[0] = 0
    _harmony(mix, artist, scale, root, progression, beat=beat, seconds=seconds, sr=sr, rng=rng)
    _melody(mix, artist, scale, root, beat=beat, seconds=seconds, sr=sr, rng=rng)
    _rhythm(mix, g, beat=beat, seconds=seconds, sr=sr, rng=rng)
    if g.noise:
        mix += g.noise * lfilter([1.0], [1.0, -0.95], rng.standard_normal(n)) * 0.2
    cutoff = min(g.cutoff_hz * artist.brightness, 0.45 * sr)
    alpha = float(np.exp(-2 * np.pi * cutoff / sr))
    mix = lfilter([1 - alpha], [1, -alpha], mix)
    mix = np.tanh(g.drive * mix) / np.tanh(g.drive) if g.drive > 1 else mix
    peak = float(np.max(np.abs(mix))) or 1.0
    return (0.89 * mix / peak).astype(np.float32)


def _harmony(mix, artist: ArtistSound, scale, root: int, progression, *, beat: float, seconds: float, sr: int, rng):
    """A chord per bar (root, third, fifth on the scale), and the bass on each beat."""
    g = artist.genre
    bar = 4 * beat
    for b in range(int(seconds / bar) + 1):
        degree = int(progression[b % 4])
        start = int(b * bar * sr)
        length = int(bar * sr)
        t = np.arange(length) / sr
        voices = (0, 2, 4) if g.chords != "power" else (0,)
        for v in voices:
            idx = degree + v
            note = root + 12 + scale[idx % len(scale)] + 12 * (idx // len(scale))
            sig = _wave(g.chords, midi_hz(note), t, rng)
            attack = 0.3 if g.chords in ("strings", "noise") else 0.01
            _add_note(mix, start, length, 0.18 * sig * _envelope(length, sr, attack=attack, release=0.1))
        if g.bass:
            for q in range(4):  # the bass plays the chord's root each beat (walking in jazz)
                step = scale[(degree + (q if g.pattern == "swing" else 0)) % len(scale)]
                bn = int(beat * sr)
                tb = np.arange(bn) / sr
                sig = _wave(g.bass, midi_hz(root - 12 + step), tb, rng)
                _add_note(mix, start + q * bn, bn, 0.35 * sig * _envelope(bn, sr, attack=0.005, release=0.05))


def _melody(mix, artist: ArtistSound, scale, root: int, *, beat: float, seconds: float, sr: int, rng):
    """A random walk on the scale, the genre's density, the artist's octave."""
    g = artist.genre
    step_s = beat / max(g.notes_per_beat, 0.25)
    pos, degree = 0.0, 0
    while pos < seconds:
        dur = step_s * float(rng.choice([1, 1, 2])) if g.title != "Experimental" else float(rng.uniform(0.05, 0.6))
        if rng.random() < 0.8:
            degree += int(rng.integers(-2, 3))
            degree = int(np.clip(degree, -5, 9))
            note = root + 12 * artist.lead_octave + scale[degree % len(scale)] + 12 * (degree // len(scale))
            ln = int(dur * sr)
            t = np.arange(ln) / sr
            f = midi_hz(note)
            sig = _wave(g.lead, f, t, rng) + 0.5 * _wave(g.lead, f * 2 ** (artist.detune / 1200), t, rng)
            attack = 0.08 if g.lead == "strings" else 0.005
            _add_note(mix, int(pos * sr), ln, 0.22 * sig * _envelope(ln, sr, attack=attack, release=0.03))
        pos += dur


def _rhythm(mix, g, *, beat: float, seconds: float, sr: int, rng):
    """The genre's drum pattern, in sixteenths (swung in jazz)."""
    kick, snare, hat = PATTERNS[g.pattern]
    if kick:
        sounds = {"kick": _drum("kick", sr, rng), "snare": _drum("snare", sr, rng), "hat": _drum("hat", sr, rng)}
        sixteenth = beat / 4
        swing = sixteenth * 0.33 if g.pattern == "swing" else 0.0
        for i in range(int(seconds / sixteenth)):
            at = i * sixteenth + (swing if i % 2 else 0.0)
            for name, pattern in (("kick", kick), ("snare", snare), ("hat", hat)):
                if pattern[i % 16] == "x":
                    s = sounds[name]
                    _add_note(mix, int(at * sr), len(s), s)
