#!/usr/bin/env python3
"""Build the training photo corpus from pinned Debian packages, reproducibly.

    python bench/photo_corpus.py [OUT_DIR] [--cache DIR] [--manifest FILE]
    python bench/photo_corpus.py --val-cross OUT_DIR     # the source photos of bench/data/val_cross

Each package of ``PACKAGES`` (name, pinned version, path globs) is fetched with
``apt-get download NAME=VERSION`` into ``--cache`` (default ``~/.cache/deblur/debs``) and
unpacked there with ``dpkg-deb -x`` (nothing is installed; both steps are skipped when the cache
already holds them). The files its include globs name go through four steps:

1. **Size.** The short side must be at least ``MIN_SIDE`` (384) px and the image at least
   ``MIN_PIXELS`` (0.2 MP); images with real transparency (any alpha below 250) are dropped
   (cut-outs, icons, overlays).
2. **Near-duplicates.** A 64-bit DCT perceptual hash of each image (32x32 grey, sign of the
   8x8 lowest frequencies against their median, DC left out); images whose hashes differ in at
   most ``HASH_THRESHOLD`` (10) bits are one photo (the same wallpaper at several resolutions,
   light/dark variants, burst frames) and only the one with the most pixels is kept. The files
   of one Plasma wallpaper folder (``NAME/contents/images/``: one picture cropped to several
   aspect ratios, which hash apart) count as one picture. Photos that hash like a validation
   photo are dropped: those of ``--exclude-like`` (default ``../shared/data/photos/val``, the
   photos bench/data/val and val_independent are cut from; the seven are also named in
   ``EXCLUDE_ALWAYS``) and the candidates of ``VAL_CROSS_PACKAGES``.
3. **Is it a sharp natural photograph?** Measured on the stored image (after step 4's resize)
   by ``photo_stats``, decided by ``photo_verdict``:

   - ``flat``: the fraction of pixels equal, in every channel, to their right and lower
     neighbours (pixels clipped to 0 or 255 in every channel left out). Drawings, renders,
     screenshots and flat-shaded art have large exactly flat areas. Must be at most
     ``MAX_FLAT`` (0.45; photos of smooth skies and bokeh reach 0.4 after JPEG and resizing).
   - ``colours`` / ``grey_levels``: distinct colours and distinct luma levels of a 256x256 (at
     most) Lanczos thumbnail. Clip art has a few hundred colours and few levels; photos tens of
     thousands of colours, and near-grey photos still most of the 256 levels. Dropped when both
     are low: fewer than ``MIN_COLOURS`` (3000) colours and fewer than ``MIN_GREY_LEVELS``
     (160) levels.
   - ``detail``: the 90th percentile over 32x32 blocks of the mean absolute 3x3 Laplacian of
     the grey image (8-bit levels): the fine detail of the best-focused tenth of the image.
     Upscaled, soft or mostly out-of-focus images score low. Must be at least ``MIN_DETAIL``
     (1.5).
   - ``noise``: the noise floor in 8-bit levels (Immerkaer's 3x3 residual, mean per 16x16
     block, 5th percentile). Recorded in the manifest but not used to decide
     (``MIN_NOISE`` = 0): JPEG compression and downsizing erase the grain of real photos in
     flat areas as well, so it did not separate photos from renders on these packages.

   The thresholds were set on this candidate pool by looking at what they kept and dropped.
   Heuristics cannot tell a photographic-looking render from a photo everywhere, so each
   package also has a short explicit ``exclude`` list of path globs (with the reason in a
   comment), and the include globs skip folders known to hold no photos (documentation
   screenshots, textures, abstract backgrounds).
4. **Stored form.** Downsized (Lanczos) so the long side is at most ``MAX_SIDE`` (1600) px,
   which also makes crops sharper, and written as RGB JPEG quality 95 without chroma
   subsampling, named ``<short package name>_<original stem>.jpg`` (Plasma: the wallpaper's
   name; GCompris: activity and stem; a ``_2`` suffix where names collide).

The manifest (``--manifest``, default ``OUT_DIR/photo_corpus.tsv``; the committed copy is
``bench/data/photo_corpus.tsv``) has one row per written photo: file, sha256 of the written
file, package, version, licence and copyright (from the package's DEP-5
``/usr/share/doc/PKG/copyright``, the ``Files:`` stanza that matches the original path, else
``Files: *``; for a non-DEP-5 file the licence names found in it), original path, original
size, stored size, and the four statistics.

The packages of ``VAL_CROSS_PACKAGES`` (the sources of bench/data/val_cross) must never be in
``PACKAGES`` (asserted); ``--val-cross`` writes their photos (same steps) for
``bench/independent_blur.py``. GCompris keeps its photos in Qt resource files; ``rcc_entries``
reads that format (no Qt needed) and ``fetch`` unpacks them to ``FILE.rcc!/...`` in the cache.
Versions are pinned: when one leaves the Debian archive, put the .deb (from
snapshot.debian.org) into the cache and the build goes on offline.

Only numpy and Pillow; ``apt-get`` and ``dpkg-deb`` for fetching.
"""
from __future__ import annotations

import argparse
import fnmatch
import hashlib
import io
import os
import re
import struct
import subprocess
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

Image.MAX_IMAGE_PIXELS = None

MIN_SIDE = 384
MIN_PIXELS = 200_000
MAX_SIDE = 1600
HASH_THRESHOLD = 10
MAX_FLAT = 0.45
MIN_COLOURS = 3000
MIN_GREY_LEVELS = 160
MIN_NOISE = 0.0
MIN_DETAIL = 1.5
JPEG_QUALITY = 95
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".ppm", ".tif", ".tiff", ".webp", ".bmp")


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    include: tuple[str, ...]
    exclude: tuple[str, ...] = ()
    short: str = ""  # prefix of the written file names
    rcc: tuple[str, ...] = ()  # globs of Qt resource files to unpack (to ``FILE.rcc!/...``)

    @property
    def prefix(self) -> str:
        return self.short or self.name.split("-")[0]


# Training sources. Globs are relative to the unpacked package root. Excludes name files the
# statistics keep but that are not photographs, or the validation photos (EXCLUDE_ALWAYS).
PACKAGES: tuple[Package, ...] = (
    Package("kphotoalbum", "5.9.1-1", ("usr/share/kphotoalbum/demo/*.jpg",),
            ("*/qt-logo.jpg",)),
    Package("mate-backgrounds", "1.26.0-1", ("usr/share/backgrounds/mate/nature/*",), short="mate"),
    # renders and digital paintings that pass the statistics (smooth colour fields with texture)
    Package("plasma-workspace-wallpapers", "4:5.27.5-2",
            ("usr/share/wallpapers/*/contents/images/*", "usr/share/wallpapers/*/contents/images_dark/*"),
            tuple(f"usr/share/wallpapers/{n}/*" for n in (
                "Altai", "Autumn", "Canopee", "Cascade", "Cluster", "Elarun", "Flow", "FlyingKonqui",
                "Honeywave", "IceCold", "Kay", "Kokkini", "MilkyWay", "Opal", "PastelHills", "Patak",
                "SafeLanding", "Shell", "Volna")),
            short="plasma"),
    # 3D renders (clock, lamps and bird), a noise pattern, a painted sky
    Package("lomiri-wallpapers-16.04", "20.04.0-2", ("usr/share/backgrounds/*",),
            ("*/greentock_by_Peter_Nerlich.jpg", "*/free_by_Peter_Nerlich.jpg",
             "*/analogpattern_by_Peter_Nerlich.jpg"), short="lomiri"),
    Package("lomiri-wallpapers-20.04", "20.04.0-2", ("usr/share/backgrounds/*",),
            ("*/Infinite-Sea_by_Aury88.jpg", "*/Fossa_by_Jasper_Roks.jpg", "*/Painting-Colors_*"),
            short="lomiri"),
    Package("palapeli-data", "4:22.12.3-1", ("usr/share/palapeli/collection/*.jpg",), short="palapeli"),
    Package("visp-images-data", "3.5.0-1", ("usr/share/visp-images-data/ViSP-images/Solvay/*",),
            short="visp"),
    # a logo on a noise texture
    Package("lxqt-themes", "1.2.0-1", ("usr/share/lxqt/wallpapers/*",), ("*/plasma_arch.png",), short="lxqt"),
    Package("scribus-template", "1.2.4.1-6", ("usr/share/scribus/templates/*/*",), short="scribus"),
    # photos of the "erase" and "explore_*" activities, inside Qt resource files
    Package("gcompris-qt-data", "3.1-2",
            tuple(f"usr/share/gcompris-qt/rcc/{a}.rcc!/**/*.webp" for a in (
                "erase", "explore_farm_animals", "explore_monuments", "explore_world_animals",
                "explore_world_music")),
            short="gcompris", rcc=("usr/share/gcompris-qt/rcc/*.rcc",)),
    Package("sddm-theme-maldives", "0.19.0-5", ("usr/share/sddm/themes/maldives/background.jpg",),
            short="sddm"),
)

# The photos of ../shared/data/photos/val (bench/data/val and val_independent are cut from them).
EXCLUDE_ALWAYS: tuple[str, ...] = (
    "usr/share/kphotoalbum/demo/grand_canyon_2.jpg",
    "usr/share/kphotoalbum/demo/pool.jpg",
    "usr/share/kphotoalbum/demo/snow.jpg",
    "usr/share/backgrounds/Bridge_by_Sander_Klootwijk.jpg",
    "usr/share/backgrounds/mate/nature/Storm.jpg",
    "usr/share/palapeli/collection/citrus-fruits.jpg",
    "usr/share/wallpapers/Kite/*",
)

# Sources of bench/data/val_cross: no training photo may come from these packages.
VAL_CROSS_PACKAGES: tuple[Package, ...] = (
    Package("gimp-help-en", "2.10.34-2",
            ("usr/share/gimp/2.0/help/en/images/tutorials/tone-mapping/power-lines.jpg",
             "usr/share/gimp/2.0/help/en/images/tutorials/tone-mapping/apple-orchard-truck-from-camera.jpg"),
            short="gimphelp"),
    Package("hugin-data", "2022.0.0+dfsg-2",
            ("usr/share/hugin/xrc/data/help_en_EN/CA_tCA00.jpg",
             "usr/share/hugin/xrc/data/help_en_EN/CA_fringes00.jpg"), short="hugin"),
    Package("cimg-examples", "3.2.1+dfsg-1", ("usr/share/doc/cimg-dev/examples/img/parrot.ppm",),
            short="cimg"),
    Package("puzzle-jigsaw", "1.0.2+git20201007.527c529+dfsg-4+b1", ("usr/share/puzzle-jigsaw/samples/*",), short="jigsaw"),
)

assert not {p.name for p in PACKAGES} & {p.name for p in VAL_CROSS_PACKAGES}, "val_cross source in training"


# ----------------------------------------------------------------------------- statistics


def _grey(arr: np.ndarray) -> np.ndarray:
    a = arr.astype(np.float64)
    if a.ndim == 2:
        return a
    return 0.299 * a[..., 0] + 0.587 * a[..., 1] + 0.114 * a[..., 2]


def _block_means(x: np.ndarray, b: int) -> np.ndarray:
    h, w = (x.shape[0] // b) * b, (x.shape[1] // b) * b
    if h == 0 or w == 0:
        return np.array([float(np.mean(x))])
    return x[:h, :w].reshape(h // b, b, w // b, b).mean(axis=(1, 3)).ravel()


def photo_stats(img: Image.Image) -> dict:
    """flat, colours, grey, noise, detail of an RGB (or L) image; see the module docstring."""
    arr = np.asarray(img.convert("RGB"))
    grey_img = bool(np.array_equal(arr[..., 0], arr[..., 1]) and np.array_equal(arr[..., 1], arr[..., 2]))
    # flat: equal to right and lower neighbours in all channels, clipped pixels left out
    a = arr[:-1, :-1].astype(np.int16)
    same = np.all(a == arr[:-1, 1:], axis=-1) & np.all(a == arr[1:, :-1], axis=-1)
    clipped = np.all((a == 0) | (a == 255), axis=-1)
    valid = ~clipped
    flat = float(same[valid].mean()) if valid.any() else 1.0
    # colours of a thumbnail
    th = img.convert("RGB")
    th.thumbnail((256, 256), Image.LANCZOS)
    t = np.asarray(th).reshape(-1, 3).astype(np.int64)
    colours = int(np.unique(t[:, 0] * 65536 + t[:, 1] * 256 + t[:, 2]).size)
    luma = (299 * t[:, 0] + 587 * t[:, 1] + 114 * t[:, 2] + 500) // 1000
    grey_levels = int(np.unique(luma).size)
    g = _grey(arr)
    # Immerkaer noise: kernel [[1,-2,1],[-2,4,-2],[1,-2,1]]
    r = (g[:-2, :-2] - 2 * g[:-2, 1:-1] + g[:-2, 2:]
         - 2 * g[1:-1, :-2] + 4 * g[1:-1, 1:-1] - 2 * g[1:-1, 2:]
         + g[2:, :-2] - 2 * g[2:, 1:-1] + g[2:, 2:])
    blocks = _block_means(np.abs(r), 16) * np.sqrt(np.pi / 2) / 6
    noise = float(np.percentile(blocks, 5))
    lap = np.abs(4 * g[1:-1, 1:-1] - g[:-2, 1:-1] - g[2:, 1:-1] - g[1:-1, :-2] - g[1:-1, 2:])
    detail = float(np.percentile(_block_means(lap, 32), 90))
    return {"flat": flat, "colours": colours, "grey": grey_img, "grey_levels": grey_levels,
            "noise": noise, "detail": detail}


def photo_verdict(stats: dict) -> tuple[bool, str]:
    """(keep, reason) from ``photo_stats``."""
    if stats["flat"] > MAX_FLAT:
        return False, f"flat {stats['flat']:.3f} > {MAX_FLAT}"
    if stats["colours"] < MIN_COLOURS and stats["grey_levels"] < MIN_GREY_LEVELS:
        return False, f"colours {stats['colours']} < {MIN_COLOURS} and grey levels {stats['grey_levels']} < {MIN_GREY_LEVELS}"
    if stats["noise"] < MIN_NOISE:
        return False, f"noise {stats['noise']:.2f} < {MIN_NOISE}"
    if stats["detail"] < MIN_DETAIL:
        return False, f"detail {stats['detail']:.2f} < {MIN_DETAIL}"
    return True, "photo"


def size_verdict(img: Image.Image) -> tuple[bool, str]:
    w, h = img.size
    if min(w, h) < MIN_SIDE or w * h < MIN_PIXELS:
        return False, f"small {w}x{h}"
    if "A" in img.getbands() or (img.mode == "P" and "transparency" in img.info):
        alpha = np.asarray(img.convert("RGBA"))[..., 3]
        if alpha.min() < 250:
            return False, "transparent"
    return True, "ok"


# ----------------------------------------------------------------------------- hashing

_DCT32 = np.array([[np.cos(np.pi * (2 * n + 1) * k / 64) for n in range(32)] for k in range(32)])


def phash(img: Image.Image) -> int:
    """64-bit DCT perceptual hash (8x8 lowest frequencies without DC, against their median)."""
    g = np.asarray(img.convert("L").resize((32, 32), Image.LANCZOS), dtype=np.float64)
    d = _DCT32 @ g @ _DCT32.T
    low = d[:8, :8].ravel()[1:]
    bits = low > np.median(low)
    bits = np.concatenate([[False], bits])
    return int("".join("1" if b else "0" for b in bits), 2)


def hamming(a: int, b: int) -> int:
    return bin(a ^ b).count("1")


def dedupe(items: list[dict], threshold: int = HASH_THRESHOLD) -> tuple[list[dict], list[tuple[dict, dict]]]:
    """Keep, of each group of items whose ``hash`` differ in <= threshold bits, the one with the
    most ``pixels``. Returns (kept, [(dropped, kept_instead)]). Groups are transitive."""
    n = len(items)
    parent = list(range(n))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(n):
        for j in range(i + 1, n):
            if hamming(items[i]["hash"], items[j]["hash"]) <= threshold:
                parent[find(i)] = find(j)
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(find(i), []).append(i)
    kept, dropped = [], []
    for idx in groups.values():
        best = max(idx, key=lambda i: (items[i]["pixels"], items[i].get("path", "")))
        kept.append(items[best])
        dropped += [(items[i], items[best]) for i in idx if i != best]
    order = {id(it): k for k, it in enumerate(items)}
    kept.sort(key=lambda it: order[id(it)])
    return kept, dropped


def picture_key(rel: str) -> str | None:
    """Files that are one picture by layout: a Plasma wallpaper folder ``NAME/contents/images/``
    holds the same picture at several sizes and aspect ratios (crops hash differently)."""
    parts = rel.split("/")
    if "contents" in parts[:-1]:
        i = parts.index("contents")
        return "/".join(parts[: i + 2])
    return None


def same_picture_folders(items: list[dict]) -> tuple[list[dict], list[tuple[dict, dict]]]:
    groups: dict[str, list[dict]] = {}
    out, dropped = [], []
    for it in items:
        k = picture_key(it["path"])
        if k is None:
            out.append(it)
        else:
            groups.setdefault(it["pkg"].name + ":" + k, []).append(it)
    for g in groups.values():
        best = max(g, key=lambda it: it["pixels"])
        out.append(best)
        dropped += [(it, best) for it in g if it is not best]
    return out, dropped


def downsize(img: Image.Image, max_side: int = MAX_SIDE) -> Image.Image:
    img = img.convert("RGB")
    w, h = img.size
    s = max_side / max(w, h)
    if s >= 1:
        return img
    return img.resize((max(1, round(w * s)), max(1, round(h * s))), Image.LANCZOS)


# ----------------------------------------------------------------------------- licences


def parse_copyright(text: str) -> list[dict]:
    """Stanzas of a DEP-5 copyright file (empty list if it is not one)."""
    if not re.match(r"(?i)format:\s*\S*(copyright-format|dep5|dep-5)", text.lstrip()):
        return []
    stanzas, cur, key = [], {}, None
    for line in text.splitlines() + [""]:
        if not line.strip():
            if cur:
                stanzas.append(cur)
            cur, key = {}, None
            continue
        if line[0] in " \t" and key:
            cur[key] += "\n" + line.strip()
            continue
        m = re.match(r"([A-Za-z-]+):\s*(.*)", line)
        if m:
            key = m.group(1).lower()
            cur[key] = m.group(2).strip()
    return [s for s in stanzas if "files" in s]


def licence_for(text: str, path: str) -> tuple[str, str]:
    """(licence, copyright) for the installed ``path`` from a copyright file's text.

    DEP-5: the last stanza whose Files pattern matches the trailing components of the path;
    else one whose pattern's last component (not ``*``) matches the file name (upstream source
    folders rarely equal install folders); else ``Files: *``. Non-DEP-5: licence names found."""
    stanzas = parse_copyright(text)
    if not stanzas:
        names = sorted(set(re.findall(r"\b(?:L?GPL-?[23](?:\.[01])?\+?|CC-BY(?:-SA)?(?:-[234]\.0)?|CC0|"
                                      r"public domain|BSD|MIT|Apache)", text, flags=re.I)))
        if not text.strip():
            return "no copyright file found", ""
        return ("non-DEP-5 copyright file: " + (", ".join(names) if names else "see file")), ""
    parts = path.strip("/").split("/")
    best = {1: None, 2: None, 3: None}
    for s in stanzas:
        for pat in s["files"].split():
            pp = pat.strip("/").split("/")
            if pat == "*":
                best[3] = s
            elif len(pp) <= len(parts) and fnmatch.fnmatchcase("/".join(parts[-len(pp):]), pat):
                best[1] = s
            elif pp[-1] not in ("*", "*.*") and fnmatch.fnmatchcase(parts[-1], pp[-1]):
                best[2] = s
    s = best[1] or best[2] or best[3]
    if s is None:
        return "no matching Files stanza", ""
    lic = s.get("license", "").split("\n")[0].strip()
    cop = " / ".join(x.strip() for x in s.get("copyright", "").split("\n") if x.strip())
    if len(cop) > 160:  # long author lists: the first ones and a pointer
        cop = cop[:150].rsplit(" / ", 1)[0] + " / ... (see copyright file)"
    return lic, cop


# ----------------------------------------------------------------------------- fetching


def fetch(pkg: Package, cache: Path) -> Path:
    """Download (apt-get download NAME=VERSION) and unpack (dpkg-deb -x) ``pkg``; return the root."""
    cache.mkdir(parents=True, exist_ok=True)
    root = cache / "x" / pkg.name
    stamp = root / ".deblur-version"
    if stamp.exists() and stamp.read_text().strip() == pkg.version:
        return root
    ver_file = pkg.version.split(":", 1)[-1]
    debs = sorted(p for p in cache.glob(f"{pkg.name}_*.deb")
                  if p.name.replace("%3a", ":").split("_")[1].split(":", 1)[-1] == ver_file)
    if not debs:
        subprocess.run(["apt-get", "download", f"{pkg.name}={pkg.version}"], cwd=cache, check=True)
        debs = sorted(p for p in cache.glob(f"{pkg.name}_*.deb")
                      if p.name.replace("%3a", ":").split("_")[1].split(":", 1)[-1] == ver_file)
    if not debs:
        raise SystemExit(f"{pkg.name}={pkg.version}: no .deb after apt-get download "
                         "(if the version left the archive, fetch it from snapshot.debian.org into the cache)")
    root.mkdir(parents=True, exist_ok=True)
    subprocess.run(["dpkg-deb", "-x", str(debs[-1]), str(root)], check=True)
    for g in pkg.rcc:
        for f in sorted(root.glob(g)):
            dest = f.with_name(f.name + "!")
            for name, data in rcc_entries(f.read_bytes()).items():
                if data is not None and name.lower().endswith(IMAGE_EXTS):
                    (dest / name).parent.mkdir(parents=True, exist_ok=True)
                    (dest / name).write_bytes(data)
    stamp.write_text(pkg.version + "\n")
    return root


def rcc_entries(blob: bytes) -> dict[str, bytes | None]:
    """Files of a Qt binary resource (.rcc): {path: bytes} (None for zstd-compressed ones).

    Layout (Qt's rcc format 1-3): "qres", version, offsets of the tree, data and names;
    tree nodes of 14 bytes (22 from version 2: + modification time): name offset, flags
    (1 zlib, 2 directory, 4 zstd), then child count and first child index, or locale and data
    offset. Data: 4-byte size, then the bytes (zlib ones start with the 4-byte plain size)."""
    if blob[:4] != b"qres":
        raise ValueError("not a Qt resource file")
    version, tree, data, names = struct.unpack(">IIII", blob[4:20])
    node = 14 if version < 2 else 22

    def name(off: int) -> str:
        n = struct.unpack(">H", blob[names + off:names + off + 2])[0]
        return blob[names + off + 6:names + off + 6 + 2 * n].decode("utf-16-be")

    out: dict[str, bytes | None] = {}
    stack = [(0, "")]
    while stack:
        i, prefix = stack.pop()
        base = tree + i * node
        noff, flags = struct.unpack(">IH", blob[base:base + 6])
        path = f"{prefix}/{name(noff)}" if i else ""
        if flags & 2:
            count, first = struct.unpack(">II", blob[base + 6:base + 14])
            stack += [(c, path) for c in range(first, first + count)]
        else:
            doff = struct.unpack(">I", blob[base + 10:base + 14])[0]
            size = struct.unpack(">I", blob[data + doff:data + doff + 4])[0]
            payload = blob[data + doff + 4:data + doff + 4 + size]
            if flags & 4:
                out[path.lstrip("/")] = None
            else:
                out[path.lstrip("/")] = zlib.decompress(payload[4:]) if flags & 1 else payload
    return out


def copyright_text(root: Path, pkg: Package, cache: Path | None = None) -> str:
    """The package's /usr/share/doc/PKG/copyright. Where that folder is a link to a sibling
    package's (``gimp-help-en`` -> ``gimp-help-common``), the sibling of the same version is
    fetched too and its copyright read."""
    doc = root / "usr/share/doc" / pkg.name
    if doc.is_symlink() and cache is not None:
        sibling = os.readlink(doc).rstrip("/").split("/")[-1]
        if sibling != pkg.name:
            return copyright_text(fetch(Package(sibling, pkg.version, ()), cache), Package(sibling, pkg.version, ()))
    p = doc / "copyright"
    if p.is_file():
        return p.read_text(errors="replace")
    return ""


def candidates(root: Path, pkg: Package) -> list[str]:
    out = set()
    for g in pkg.include:
        for p in root.glob(g):
            rel = p.relative_to(root).as_posix()
            if not p.is_file() or not rel.lower().endswith(IMAGE_EXTS):
                continue
            if any(fnmatch.fnmatchcase(rel, e) or fnmatch.fnmatchcase("/" + rel, e)
                   for e in pkg.exclude + EXCLUDE_ALWAYS):
                continue
            out.add(rel)
    return sorted(out)


# ----------------------------------------------------------------------------- building


def _stem(rel: str) -> str:
    parts = rel.split("/")
    stem = Path(parts[-1]).stem
    if "activities" in parts[:-2]:  # gcompris: .../activities/ACTIVITY/resource/.../NAME.webp
        stem = parts[parts.index("activities") + 1] + "_" + stem
    elif "contents" in parts:  # plasma layout: NAME/contents/images[_dark]/WxH.jpg
        i = parts.index("contents")
        stem = parts[i - 1] + ("_dark" if parts[i + 1].endswith("_dark") else "")
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", stem)


def reference_hashes(folders: list[Path], packages=(), cache: Path | None = None) -> list[tuple[str, int]]:
    """(label, phash) of the photos of ``folders`` and of the candidates of ``packages``."""
    ref = []
    for d in folders:
        if d.is_dir():
            for p in sorted(d.iterdir()):
                if p.suffix.lower() in IMAGE_EXTS:
                    ref.append((p.name, phash(Image.open(p))))
    for pkg in packages:
        root = fetch(pkg, cache)
        for rel in candidates(root, pkg):
            ref.append((f"{pkg.name}:{rel}", phash(Image.open(root / rel))))
    return ref


def select(packages, cache: Path, ref: list[tuple[str, int]], log=print) -> list[dict]:
    """Steps 1-3 for all packages: returns the kept items (with stats), logs the rest.
    Candidates that hash like any of ``ref`` (label, hash) are dropped."""
    items = []
    for pkg in packages:
        root = fetch(pkg, cache)
        ctext = copyright_text(root, pkg, cache)
        for rel in candidates(root, pkg):
            try:
                img = Image.open(root / rel)
                img.load()
            except Exception as e:  # noqa: BLE001
                log(f"  drop {pkg.name}:{rel}: unreadable ({e})")
                continue
            ok, why = size_verdict(img)
            if not ok:
                log(f"  drop {pkg.name}:{rel}: {why}")
                continue
            lic, cop = licence_for(ctext, rel)
            items.append({"pkg": pkg, "path": rel, "abs": root / rel, "size": img.size,
                          "pixels": img.size[0] * img.size[1], "hash": phash(img),
                          "licence": lic, "copyright": cop})
    kept0 = []
    for it in items:
        near = [p for p, h in ref if hamming(h, it["hash"]) <= HASH_THRESHOLD]
        if near:
            log(f"  drop {it['pkg'].name}:{it['path']}: like validation photo {near[0]}")
        else:
            kept0.append(it)
    kept0, dropped = same_picture_folders(kept0)
    kept, dropped2 = dedupe(kept0)
    dropped += dropped2
    for d, k in dropped:
        log(f"  drop {d['pkg'].name}:{d['path']}: duplicate of {k['pkg'].name}:{k['path']}")
    out = []
    for it in kept:
        img = downsize(Image.open(it["abs"]))
        st = photo_stats(img)
        ok, why = photo_verdict(st)
        it["stats"], it["stored"] = st, img
        if ok:
            out.append(it)
        else:
            log(f"  drop {it['pkg'].name}:{it['path']}: {why} (flat {st['flat']:.3f}, colours {st['colours']}, "
                f"grey levels {st['grey_levels']}, noise {st['noise']:.2f}, detail {st['detail']:.2f})")
    return out


MANIFEST_COLUMNS = ("file", "sha256", "package", "version", "licence", "copyright", "original_path",
                    "original_size", "stored_size", "flat", "colours", "noise", "detail")


def write(items: list[dict], out_dir: Path, manifest: Path) -> list[dict]:
    out_dir.mkdir(parents=True, exist_ok=True)
    rows, used = [], set()
    for it in items:
        name = f"{it['pkg'].prefix}_{_stem(it['path'])}"
        base, k = name, 2
        while name in used:
            name, k = f"{base}_{k}", k + 1
        used.add(name)
        buf = io.BytesIO()
        it["stored"].save(buf, "JPEG", quality=JPEG_QUALITY, subsampling=0, optimize=True)
        data = buf.getvalue()
        (out_dir / f"{name}.jpg").write_bytes(data)
        st = it["stats"]
        rows.append({"file": f"{name}.jpg", "sha256": hashlib.sha256(data).hexdigest(),
                     "package": it["pkg"].name, "version": it["pkg"].version,
                     "licence": it["licence"], "copyright": it["copyright"],
                     "original_path": "/" + it["path"],
                     "original_size": "{}x{}".format(*it["size"]), "stored_size": "{}x{}".format(*it["stored"].size),
                     "flat": f"{st['flat']:.4f}", "colours": str(st["colours"]),
                     "noise": f"{st['noise']:.2f}", "detail": f"{st['detail']:.2f}"})
    rows.sort(key=lambda r: r["file"])
    manifest.parent.mkdir(parents=True, exist_ok=True)
    with open(manifest, "w") as f:
        f.write("\t".join(MANIFEST_COLUMNS) + "\n")
        for r in rows:
            f.write("\t".join(r[c].replace("\t", " ") for c in MANIFEST_COLUMNS) + "\n")
    return rows


def clear_previous(out_dir: Path, manifest: Path) -> None:
    """Remove the photos an earlier build listed in ``manifest``; refuse a folder with other photos."""
    listed = set()
    if manifest.is_file():
        with open(manifest) as f:
            next(f, None)
            listed = {line.split("\t", 1)[0] for line in f if line.strip()}
    if not out_dir.is_dir():
        return
    others = [p.name for p in out_dir.iterdir() if p.suffix.lower() in IMAGE_EXTS and p.name not in listed]
    if others:
        raise SystemExit(f"{out_dir} holds photos this tool did not write ({others[0]}, ...); choose another folder")
    for name in sorted(listed):
        (out_dir / name).unlink(missing_ok=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out_dir", nargs="?", default=os.path.expanduser("~/.cache/deblur/photo_corpus"))
    ap.add_argument("--cache", default=os.path.expanduser("~/.cache/deblur/debs"),
                    help="where .deb files are downloaded and unpacked (x/<package>/)")
    ap.add_argument("--manifest", help="manifest TSV (default OUT_DIR/photo_corpus.tsv)")
    ap.add_argument("--exclude-like", action="append", type=Path,
                    help="drop photos that hash like any photo of this folder "
                         "(default ../shared/data/photos/val next to the repository)")
    ap.add_argument("--val-cross", action="store_true",
                    help="write the val_cross source photos (VAL_CROSS_PACKAGES) instead")
    ap.add_argument("--only", action="append", help="only these packages (debugging)")
    args = ap.parse_args(argv)
    out_dir = Path(args.out_dir)
    manifest = Path(args.manifest) if args.manifest else out_dir / "photo_corpus.tsv"
    if args.exclude_like is None:
        args.exclude_like = [Path(__file__).resolve().parents[2] / "shared/data/photos/val"]
    packages = VAL_CROSS_PACKAGES if args.val_cross else PACKAGES
    if args.only:
        packages = tuple(p for p in packages if p.name in args.only)
    clear_previous(out_dir, manifest)
    cache = Path(args.cache)
    # training photos must not look like any validation photo (val, val_independent, val_cross)
    ref = reference_hashes(args.exclude_like, () if args.val_cross else VAL_CROSS_PACKAGES, cache)
    items = select(packages, cache, ref)
    rows = write(items, out_dir, manifest)
    per = {}
    for r in rows:
        per[r["package"]] = per.get(r["package"], 0) + 1
    for k, v in per.items():
        print(f"{k}\t{v}")
    print(f"{len(rows)} photos from {len(per)} packages -> {out_dir} (manifest {manifest})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
