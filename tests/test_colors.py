"""hbm.colors: one colour per concept, and every chapter takes its colours from there."""

import re
from pathlib import Path

import pytest

from hbm import colors

ROOT = Path(__file__).resolve().parents[1]
HEX = re.compile(r"[\"'](#[0-9A-Fa-f]{6}|#[0-9A-Fa-f]{3})[\"']")


def _grey(hex_colour: str) -> bool:
    h = hex_colour.lstrip("#")
    if len(h) == 3:
        h = "".join(c * 2 for c in h)
    r, g, b = (int(h[i:i + 2], 16) for i in (0, 2, 4))
    return r == g == b


def test_no_colour_belongs_to_two_concepts():
    """Every colour of every concept (methods, checks, intervals, genres, regions, ...) is used by that concept alone."""
    owner = {}
    for concept, values in colors.CONCEPTS.items():
        assert len(set(v.upper() for v in values)) == len(values), f"{concept} repeats a colour"
        for v in values:
            assert v.upper() not in owner, f"{v} is a colour of both {owner[v.upper()]} and {concept}"
            owner[v.upper()] = concept


def test_concept_colours_are_not_grey():
    """Greys are left to axes, reference lines and replicated data, so a grey never stands for an estimator, genre or region."""
    for concept in ("methods", "genres", "regions", "intervals", "parameterizations"):
        greys = [v for v in colors.CONCEPTS[concept] if _grey(v) and v != colors.METHOD_COLORS["Truth"]]
        assert not greys, f"{concept}: {greys}"


def test_scale_picks_and_orders_the_keys_asked_for():
    """scale() maps the keys a chart shows to their book-wide colours, in the order given."""
    got = colors.scale(colors.METHOD_COLORS, ["Partial pooling", "No pooling"])
    assert got == {"domain": ["Partial pooling", "No pooling"],
                   "range": [colors.METHOD_COLORS["Partial pooling"], colors.METHOD_COLORS["No pooling"]]}
    assert colors.scale(colors.CHECK_COLORS)["domain"] == list(colors.CHECK_COLORS)
    with pytest.raises(KeyError):
        colors.scale(colors.METHOD_COLORS, ["No such method"])


def test_genres_and_regions_cycle_in_the_order_given():
    """Genre and region colours follow the file's order, deduplicated, and repeat past the palette's length."""
    names = [f"r{k}" for k in range(len(colors.REGION_PALETTE) + 2)]
    got = colors.region_colors(names + ["r0"])
    assert list(got) == names
    assert got["r0"] == colors.REGION_PALETTE[0] == got[f"r{len(colors.REGION_PALETTE)}"]
    assert colors.genre_colors(["Pop", "Rock"]) == {"Pop": colors.GENRE_PALETTE[0], "Rock": colors.GENRE_PALETTE[1]}
    assert not set(colors.GENRE_PALETTE) & set(colors.REGION_PALETTE)


def test_chapters_name_no_colour_of_their_own():
    """A chapter's code names no colour except greys: every other colour comes from hbm.colors."""
    found = []
    for qmd in sorted((ROOT / "chapters").glob("*.qmd")):
        for lineno, line in enumerate(qmd.read_text(encoding="utf-8").splitlines(), 1):
            found += [f"{qmd.name}:{lineno}: {m.group(1)}" for m in HEX.finditer(line) if not _grey(m.group(1))]
    assert not found, "colours named outside hbm.colors:\n" + "\n".join(found)
