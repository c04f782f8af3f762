"""A deterministic, offline stand-in for Goldsky fills and the platform's reference files.

The quickstart must run without network access or credentials, yet exercise every trap the
real data sets hold: uint256 amounts as strings, mixed-case addresses, both roles of a match,
many events in one second, wallets that sell tokens they never bought, fills whose
`price x quantity` overflows Int64, traded tokens that no listed market owns, empty raw
categories, and titles whose substrings ("eth", "war", "sol") would fool keyword rules.

Two properties make the generated data safe to refresh nightly:

* The market universe (conditions, tokens, markets, wallets) depends only on the seed, so
  the same condition keeps its ids and metadata whatever day the sample is built.
* A day's fill file depends only on (seed, day). Moving the anchor forward leaves the
  existing files byte-identical (gzip with mtime 0) and adds one new day, exactly like an
  incremental Goldsky delivery; unchanged files are not rewritten.

Run `python -m ingest.sample_data --fills-dir D --data-dir D --anchor YYYY-MM-DD`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import hashlib
import itertools
import json
import os
import re
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from ingest.reference_contract import RESOLUTION_PAYOUTS
from pipeline.names import CATEGORY_DEFINITIONS, MARKETS, RESOLUTION_MAP, UNCATEGORIZED

UTC = dt.UTC

DEFAULT_SEED = 20251029
DEFAULT_DAYS = 30

SAMPLE_MARKER = ".sample"
FILL_FILE_PATTERN = "order_filled-{day}.jsonl.gz"

EXCHANGE = "0x4bfb41d5b3570defd03c39a9a4d8de6bd8b8982e"  # v1 CTF Exchange
COLLATERAL = "0"
CHAIN_ID = 137

# --- shape of the universe --------------------------------------------------------------
N_CONDITIONS = 3600
N_UNKNOWN_MAP = 200  # map entries with market_id "unknown"
N_LISTED = 400  # conditions in markets.jsonl
N_TRADED = 300  # listed conditions that trade
N_TRADED_RESOLVED = 240  # 80 % of the traded ones
N_LISTED_IDLE_RESOLVED = 70  # of the 100 listed but untraded
N_OTHER_RESOLVED = 2840  # of the 3,000 map-only conditions
N_ORPHAN_TOKENS = 3  # traded tokens that belong to no listed market

N_WALLETS = 250
N_MARKET_MAKERS = 12
N_WHALES = 3
MIXED_CASE_SHARE = 0.25

# --- shape of a day ------------------------------------------------------------------------
MATCHES_PER_DAY = 115  # + N_TRADED / LONG_TAIL_CYCLE scheduled, x ~2.75 events = ~400
LONG_TAIL_CYCLE = 10  # every traded condition trades at least once per this many days
MAKER_COUNT_P = (0.45, 0.35, 0.20)  # 1, 2 or 3 maker orders per match
TAKER_BUY_P = 0.62
ORPHAN_MATCH_P = 0.012
BURSTS_PER_DAY = (3, 7)  # [low, high)
BURST_EVENTS = (5, 20)
# Market makers quote most asks (they split collateral into both outcomes off the order
# book, so in fills they sell tokens they never bought); retail wallets rest bids more
# than asks. Together with portfolios this keeps retail mostly net long.
MM_ASK_P = 0.85  # a maker slot opposite a buying taker goes to a market maker
MM_BID_P = 0.5  # a maker slot opposite a selling taker goes to a market maker
FEE_P = 0.1

# Polygon makes a block every ~2 s; anchor the numbering near the real chain height.
_BLOCK_EPOCH = int(dt.datetime(2025, 10, 1, tzinfo=UTC).timestamp())
_BLOCK_AT_EPOCH = 77_000_000

# SeedSequence stream keys: one independent stream per purpose.
_STREAM_UNIVERSE, _STREAM_WALLETS, _STREAM_REFERENCE, _STREAM_DAY = 1, 2, 3, 4

DEFINITIONS_UPDATED = "2025-10-29T00:00:00.000Z"

# Canonical buckets, in the order the definitions file lists them. Every raw value is
# lower-case and belongs to exactly one bucket: matching is on whole values.
CATEGORY_DEFINITIONS_LIST: tuple[dict, ...] = (
    {
        "name": "Politics / Geopolitics",
        "description": "Elections, government actions, wars and international relations.",
        "categories": [
            "politics",
            "us-current-affairs",
            "global politics",
            "geopolitics",
            "elections",
            "world",
        ],
        "tags": [
            "elections",
            "us-politics",
            "world",
            "geopolitics",
            "trump",
            "ukraine",
            "middle-east",
            "primaries",
        ],
    },
    {
        "name": "Macro / Economy",
        "description": "Central banks, inflation, jobs, growth and other macro data releases.",
        "categories": ["economy", "economics", "finance"],
        "tags": ["fed-rates", "inflation", "economy", "recession", "jobs-report", "gdp"],
    },
    {
        "name": "Earnings / Business",
        "description": "Company results, deals, listings and corporate events.",
        "categories": ["business", "companies", "tech"],
        "tags": ["earnings", "business", "ipos", "big-tech", "mergers", "stocks"],
    },
    {
        "name": "Crypto / DeFi",
        "description": "Token prices, protocols, listings and on-chain events.",
        "categories": ["crypto", "defi", "nfts"],
        "tags": ["bitcoin", "crypto-prices", "ethereum", "solana", "crypto", "defi", "airdrops", "memecoins"],
    },
    {
        "name": "Sports",
        "description": "Leagues, matches, players and tournaments.",
        "categories": ["sports", "nba", "nfl", "soccer", "mlb", "nhl", "tennis", "esports"],
        "tags": [
            "nba",
            "sports",
            "nfl",
            "soccer",
            "epl",
            "mlb",
            "nhl",
            "ufc",
            "f1",
            "tennis",
            "champions-league",
        ],
    },
    {
        "name": "Pop Culture / Media",
        "description": "Film, music, awards, celebrities, search trends and social media.",
        "categories": ["pop-culture", "culture", "entertainment", "art"],
        "tags": ["movies", "music", "awards", "celebrities", "youtube", "tv", "box-office", "google-search"],
    },
    {
        "name": "Legal / Enforcement",
        "description": "Court cases, indictments, sentences and regulators' enforcement actions.",
        "categories": ["legal", "courts", "crime"],
        "tags": ["court-cases", "legal", "supreme-court", "indictments", "sec", "trials"],
    },
    {
        "name": "Weather / Disaster / Misc",
        "description": "Weather, natural disasters, science and space.",
        "categories": ["science", "weather", "climate", "space"],
        "tags": ["hurricanes", "weather", "temperature", "earthquakes", "space", "science", "climate"],
    },
)
CANONICAL_CATEGORIES: tuple[str, ...] = tuple(c["name"] for c in CATEGORY_DEFINITIONS_LIST)

_DATES = (
    "October 31",
    "November 15",
    "November 30",
    "December 31",
    "January 31, 2026",
    "March 31, 2026",
    "June 30, 2026",
    "December 31, 2026",
)
_MONTHS = ("November", "December", "January", "March", "April", "June")

# Per bucket: its share of listed markets, how often its raw category is empty (common for
# newer markets, which then map through their tags only) and coherent kinds of question:
# (template filled from _FILLERS, raw category spellings, tag lists).
_ARCHETYPES: dict[str, dict] = {
    "Politics / Geopolitics": {
        "weight": 0.24,
        "empty": 0.3,
        "kinds": (
            (
                "Will {politician} win the 2026 {state} Senate race?",
                ("Politics", "US-current-affairs"),
                (["elections", "us-politics"], ["primaries", "elections"]),
            ),
            (
                "Will Russia capture {town} by {date}?",
                ("Politics", "Global Politics"),
                (["geopolitics", "ukraine"], ["world"]),
            ),
            (
                "Will {country} and {country2} announce a ceasefire by {date}?",
                ("Global Politics", "Politics"),
                (["middle-east", "world"], ["geopolitics"], ["world"]),
            ),
            (
                "Will Trump meet with {leader} by {date}?",
                ("Politics", "US-current-affairs"),
                (["trump", "us-politics"], ["world"]),
            ),
            (
                "Will {party} win the most seats in the {country} election?",
                ("Global Politics",),
                (["elections", "world"],),
            ),
        ),
    },
    "Macro / Economy": {
        "weight": 0.10,
        "empty": 0.25,
        "kinds": (
            (
                "Will the Fed cut rates by {bps} bps at the {month} meeting?",
                ("Economy", "Finance"),
                (["fed-rates"], ["fed-rates", "economy"]),
            ),
            ("Will US CPI inflation be above {pct}% in {month}?", ("Economy",), (["inflation", "economy"],)),
            (
                "Will the US unemployment rate be {pct}% or higher in {month}?",
                ("Economy",),
                (["jobs-report"], ["economy"]),
            ),
            (
                "Will the US enter a recession by {date}?",
                ("Economy", "Finance"),
                (["recession"], ["recession", "economy"]),
            ),
            ("Will US Q{quarter} GDP growth exceed {pct}%?", ("Economy",), (["gdp", "economy"],)),
        ),
    },
    "Earnings / Business": {
        "weight": 0.09,
        "empty": 0.25,
        "kinds": (
            (
                "Will {company} beat quarterly earnings estimates?",
                ("Business",),
                (["earnings"], ["earnings", "stocks"]),
            ),
            (
                "Will {company} be the largest company in the world on {date}?",
                ("Business", "Tech"),
                (["big-tech", "stocks"],),
            ),
            (
                "Will {company} announce layoffs by {date}?",
                ("Business", "Tech"),
                (["business"], ["big-tech"]),
            ),
            ("Will {startup} IPO by {date}?", ("Business",), (["ipos"], ["ipos", "stocks"])),
        ),
    },
    "Crypto / DeFi": {
        "weight": 0.18,
        "empty": 0.3,
        "kinds": (
            ("Will Bitcoin reach ${btc} by {date}?", ("Crypto",), (["bitcoin", "crypto-prices"],)),
            ("Will Ethereum close above ${ethp} on {date}?", ("Crypto",), (["ethereum", "crypto-prices"],)),
            (
                "Will Solana hit ${solp} by {date}?",
                ("Crypto",),
                (["solana", "crypto-prices"], ["solana", "crypto"]),
            ),
            (
                "Will {coin} be listed on Coinbase by {date}?",
                ("Crypto",),
                (["crypto"], ["memecoins", "crypto"]),
            ),
            (
                "Will {protocol} launch a token by {date}?",
                ("Crypto", "DeFi"),
                (["airdrops", "defi"], ["airdrops"]),
            ),
        ),
    },
    "Sports": {
        "weight": 0.20,
        "empty": 0.3,
        "kinds": (
            ("Will the {nba_team} win the 2026 NBA Finals?", ("NBA", "Sports"), (["nba", "sports"],)),
            (
                "Will the {nba_team} beat the {nba_team2} on {date}?",
                ("NBA", "Sports"),
                (["nba", "sports"], ["nba"]),
            ),
            ("Will {player} score 30+ points on {date}?", ("NBA",), (["nba", "sports"],)),
            ("Will the {nfl_team} win Super Bowl LX?", ("NFL", "Sports"), (["nfl", "sports"],)),
            ("Will {club} win the Premier League?", ("Soccer", "Sports"), (["soccer", "epl"],)),
            ("Will {club} win the Champions League?", ("Soccer",), (["champions-league", "soccer"],)),
            ("Will {driver} win the {gp} Grand Prix?", ("Sports",), (["f1"], ["f1", "sports"])),
            ("Will {fighter} win by knockout at the next UFC event?", ("Sports",), (["ufc", "sports"],)),
        ),
    },
    "Pop Culture / Media": {
        "weight": 0.08,
        "empty": 0.35,
        "kinds": (
            (
                "Will {movie} gross over ${gross}M on its opening weekend?",
                ("Pop-Culture",),
                (["box-office", "movies"], ["movies"]),
            ),
            (
                "Will {celebrity} be the #1 searched person on Google this year?",
                ("Pop-Culture", "Culture"),
                (["google-search"],),
            ),
            (
                "Will {artist} release a new album by {date}?",
                ("Pop-Culture",),
                (["music"], ["music", "celebrities"]),
            ),
            ("Will {movie} win Best Picture at the 2026 Oscars?", ("Pop-Culture",), (["awards", "movies"],)),
            ("Will MrBeast reach {subs}M subscribers by {date}?", ("Pop-Culture", "Culture"), (["youtube"],)),
        ),
    },
    "Legal / Enforcement": {
        "weight": 0.04,
        "empty": 0.5,
        "kinds": (
            (
                "Will {defendant} be sentenced to prison by {date}?",
                ("Legal", "Crime"),
                (["court-cases"], ["trials"]),
            ),
            ("Will the Supreme Court rule on {case} by {date}?", ("Legal",), (["supreme-court", "legal"],)),
            ("Will {defendant} be indicted by {date}?", ("Legal", "Crime"), (["indictments"],)),
            ("Will the SEC sue {company} by {date}?", ("Legal",), (["sec"], ["sec", "legal"])),
        ),
    },
    "Weather / Disaster / Misc": {
        "weight": 0.04,
        "empty": 0.3,
        "kinds": (
            (
                "Will the highest temperature in {city} be between {temps}\u00b0F on {date}?",
                ("Weather",),
                (["weather", "temperature"],),
            ),
            (
                "Will a Category {cat} hurricane make landfall in the US by {date}?",
                ("Weather",),
                (["hurricanes"], ["hurricanes", "weather"]),
            ),
            (
                "Will there be a magnitude {mag}+ earthquake in {region} by {date}?",
                ("Science",),
                (["earthquakes"],),
            ),
            ("Will SpaceX Starship reach orbit by {date}?", ("Science",), (["space", "science"],)),
            ("Will 2025 be the hottest year on record?", ("Science", "Weather"), (["climate"],)),
        ),
    },
    # Raw values no canonical bucket lists: the pipeline must fall back to the default.
    UNCATEGORIZED: {
        "weight": 0.03,
        "empty": 0.85,
        "kinds": (
            (
                "Will {celebrity} say \u201c{word}\u201d during the next press conference?",
                ("Coronavirus",),
                ([], ["mentions"]),
            ),
            (
                "Will {celebrity} post more than {posts} times this week?",
                ("Coronavirus",),
                (["recurring"], []),
            ),
            (
                "Will the word \u201c{word}\u201d trend on X on {date}?",
                ("Coronavirus",),
                (["mentions"], ["covid"]),
            ),
        ),
    },
}

_FILLERS: dict[str, tuple] = {
    "politician": (
        "Jon Ossoff",
        "Roy Cooper",
        "Susan Collins",
        "Ken Paxton",
        "Sherrod Brown",
        "Mike Rogers",
        "Vivek Ramaswamy",
        "Byron Donalds",
        "Mary Peltola",
        "Josh Stein",
    ),
    "state": (
        "Georgia",
        "North Carolina",
        "Maine",
        "Texas",
        "Ohio",
        "Michigan",
        "Florida",
        "Alaska",
        "Arizona",
        "Nevada",
    ),
    "town": ("Kupiansk", "Pokrovsk", "Kostiantynivka", "Huliaipole", "Siversk", "Lyman"),
    "country": (
        "Israel",
        "Ukraine",
        "India",
        "Thailand",
        "Armenia",
        "Japan",
        "Chile",
        "Netherlands",
        "Germany",
        "Canada",
    ),
    "country2": ("Hamas", "Russia", "Pakistan", "Cambodia", "Azerbaijan", "Venezuela"),
    "leader": ("Xi Jinping", "Vladimir Putin", "Kim Jong Un", "Narendra Modi", "Lula"),
    "party": ("the Liberal Party", "the Conservatives", "the LDP", "the CDU", "the PVV"),
    "bps": (25, 50, 75),
    "pct": ("2.5", "3.0", "3.2", "4.3", "4.5", "2.0"),
    "quarter": (1, 2, 3, 4),
    "company": (
        "Nvidia",
        "Apple",
        "Microsoft",
        "Tesla",
        "Meta",
        "Amazon",
        "Alphabet",
        "Netflix",
        "Palantir",
        "Intel",
        "Coinbase",
        "OpenAI",
    ),
    "price": (150, 200, 250, 300, 500, 1000),
    "btc": ("100,000", "120,000", "130,000", "150,000", "90,000", "80,000"),
    "ethp": ("3,000", "4,000", "5,000", "6,000"),
    "solp": ("150", "200", "250", "300"),
    "coin": ("Hyperliquid", "Pump.fun", "Monad", "Pudgy Penguins", "Fartcoin", "Berachain"),
    "protocol": ("MetaMask", "Polymarket", "OpenSea", "Base", "Phantom", "Rabby"),
    "nba_team": (
        "Boston Celtics",
        "Oklahoma City Thunder",
        "Denver Nuggets",
        "New York Knicks",
        "Los Angeles Lakers",
        "Cleveland Cavaliers",
    ),
    "nba_team2": (
        "Miami Heat",
        "Dallas Mavericks",
        "Houston Rockets",
        "Orlando Magic",
        "Indiana Pacers",
        "Minnesota Timberwolves",
    ),
    "nfl_team": (
        "Kansas City Chiefs",
        "Philadelphia Eagles",
        "Detroit Lions",
        "Buffalo Bills",
        "Baltimore Ravens",
        "Green Bay Packers",
    ),
    "fighter": ("Alex Pereira", "Islam Makhachev", "Ilia Topuria", "Tom Aspinall"),
    "startup": ("Stripe", "Databricks", "Discord", "Kraken", "Revolut", "Anduril"),
    "club": ("Arsenal", "Liverpool", "Manchester City", "Chelsea", "Tottenham", "Newcastle"),
    "player": (
        "Shai Gilgeous-Alexander",
        "Nikola Jokic",
        "Luka Doncic",
        "Jayson Tatum",
        "Anthony Edwards",
        "Giannis Antetokounmpo",
    ),
    "driver": ("Max Verstappen", "Lando Norris", "Oscar Piastri", "Charles Leclerc"),
    "gp": ("Mexico City", "Brazilian", "Las Vegas", "Qatar", "Abu Dhabi"),
    "movie": (
        "Wicked: For Good",
        "Avatar: Fire and Ash",
        "Zootopia 2",
        "One Battle After Another",
        "Hamnet",
        "Frankenstein",
    ),
    "gross": (50, 100, 150, 200),
    "celebrity": (
        "Taylor Swift",
        "Elon Musk",
        "Kim Kardashian",
        "Drake",
        "Andrew Tate",
        "Bad Bunny",
        "Sydney Sweeney",
    ),
    "artist": ("Rihanna", "Frank Ocean", "Kendrick Lamar", "Adele", "Playboi Carti"),
    "subs": (400, 450, 500),
    "defendant": ("Sean Combs", "Sam Bankman-Fried", "Luigi Mangione", "Do Kwon", "Eric Adams"),
    "case": ("the tariff case", "birthright citizenship", "the TikTok ban", "the Fed governor removal"),
    "city": ("London", "New York", "Seoul", "Toronto", "Chicago", "Buenos Aires", "Paris"),
    "temps": ("56-57", "60-61", "64-65", "70-71", "74-75"),
    "cat": (4, 5),
    "mag": ("7.0", "7.5", "8.0"),
    "region": ("Japan", "California", "Indonesia", "Chile", "Turkey"),
    "word": ("tariff", "crypto", "AI", "beautiful", "China"),
    "posts": (100, 150, 200),
    "date": _DATES,
    "month": _MONTHS,
}

# Hand-written markets that always exist and always trade: titles whose substrings would
# fool keyword rules ("war" in Warner/Warriors/Warren, "eth" in Ethan/Elizabeth, "sol" in
# resolve/Marisol), plus an empty-category market that maps through its tags only.
_SHOWCASE: tuple[tuple[str, str, list[str]], ...] = (
    ("Will Warner Bros. Discovery be acquired by December 31?", "Business", ["mergers", "business"]),
    ("Will Ethan Hawke win Best Actor at the 2026 Oscars?", "Pop-Culture", ["movies", "awards"]),
    ("Will the Golden State Warriors win the 2026 NBA Finals?", "NBA", ["nba", "sports"]),
    ("Will Congress resolve the government shutdown by November 15?", "US-current-affairs", ["us-politics"]),
    (
        "Will Elizabeth Warren announce a 2028 presidential run by December 31?",
        "",
        ["elections", "us-politics"],
    ),
    ("Will Marisol Ortega be convicted by December 31?", "", ["court-cases"]),
    ("Will Seth Meyers host the 2026 Golden Globes?", "", ["tv", "awards"]),
)
_SHOWCASE_BUCKETS = (
    "Earnings / Business",
    "Pop Culture / Media",
    "Sports",
    "Politics / Geopolitics",
    "Politics / Geopolitics",
    "Legal / Enforcement",
    "Pop Culture / Media",
)


class SampleDataError(RuntimeError):
    """The sample cannot be written without destroying data that is not a generated sample."""


@dataclass(frozen=True)
class SampleSummary:
    """What `generate_sample` produced, so callers can check loads against known truth."""

    anchor: dt.date
    fill_files: list[Path]  # the per-day files written or already present
    n_fills: int  # events over all days
    n_markets: int  # lines in markets.jsonl
    n_traded_conditions: int  # listed conditions with at least one fill in the window
    n_resolved_conditions: int  # entries in the resolution map that are truly resolved
    n_map_entries: int


# ---------------------------------------------------------------------------------------
# universe: depends on the seed only
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Market:
    condition: int
    market_id: str
    question: str
    category: str
    tags: tuple[str, ...]
    bucket: str
    event_id: str | None
    end_date: str | None


@dataclass(frozen=True)
class _Universe:
    condition_ids: tuple[str, ...]
    tokens: tuple[tuple[str, str], ...]  # (yes, no) per condition
    market_ids: tuple[str | None, ...]  # None => "unknown" in the map
    outcomes: tuple[str | None, ...]  # "YES" | "NO" | None
    markets: tuple[_Market, ...]  # listed markets, sorted by market id
    traded: tuple[int, ...]  # condition indexes, most popular first
    traded_weights: np.ndarray  # popularity, sums to 1
    p_yes: np.ndarray  # long-run YES price per traded condition
    ticks: np.ndarray  # price ticks per unit per traded condition
    orphan_tokens: tuple[str, ...]
    orphan_p: tuple[float, ...]
    wallets: tuple[str, ...]  # lower-case addresses
    wallets_mixed: tuple[str, ...]  # checksum-like rendering (== lower if not mixed)
    market_makers: tuple[int, ...]
    whales: tuple[int, ...]
    retail: tuple[int, ...]
    retail_weights: np.ndarray
    portfolios: tuple[tuple[tuple[int, int], ...], ...]  # per retail slot: (traded k, outcome)
    holders: dict  # (traded k, outcome) -> retail slots
    long_tail: tuple[tuple[int, int], ...]  # per traded k: a held (k, outcome)


def _rng(seed: int, *keys: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, *keys]))


def _digest(seed: int, *parts: object, algo: str = "sha256") -> bytes:
    text = ":".join(["cascadian-sample", str(seed), *map(str, parts)])
    return hashlib.new(algo, text.encode()).digest()


def _token_id(seed: int, *parts: object) -> str:
    """A uint256-looking decimal of 70-78 digits, like real ERC-1155 position ids."""
    h = int.from_bytes(_digest(seed, "token", *parts, algo="sha512"), "big")
    digits = 70 + h % 9
    rest = h >> 8
    if digits == 78:  # stay below 2**256 like a real uint256
        value = 10**77 + rest % (2**256 - 10**77)
    else:
        value = 10 ** (digits - 1) + rest % (9 * 10 ** (digits - 1))
    return str(value)


def _checksum_like(address: str) -> str:
    """EIP-55-style casing (sha3 rather than keccak): looks real, forces lower-casing."""
    body = address[2:]
    nibbles = hashlib.sha3_256(body.encode()).hexdigest()
    return "0x" + "".join(c.upper() if c.isalpha() and int(n, 16) >= 8 else c for c, n in zip(body, nibbles))


def _pick(rng: np.random.Generator, seq: Sequence):
    return seq[int(rng.integers(len(seq)))]


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60].rstrip("-")


def _market_text(rng: np.random.Generator, bucket: str, used: set[str]) -> tuple[str, str, list[str]]:
    """(question, raw category, tags) of one coherent made-up market; questions are unique."""
    arche = _ARCHETYPES[bucket]
    for _ in range(30):
        template, categories, tag_options = _pick(rng, arche["kinds"])
        fields = {k: _pick(rng, v) for k, v in _FILLERS.items() if "{" + k + "}" in template}
        question = template.format(**fields)
        if question not in used:
            break
    else:
        n = 2
        while f"{question[:-1]} (#{n})?" in used:
            n += 1
        question = f"{question[:-1]} (#{n})?"
    category = "" if rng.random() < arche["empty"] else _pick(rng, categories)
    return question, category, list(_pick(rng, tag_options))


def _end_date(rng: np.random.Generator, resolved: bool) -> str | None:
    if rng.random() < 0.12:
        return None
    lo, hi = (
        (dt.date(2025, 1, 15), dt.date(2025, 10, 28))
        if resolved
        else (dt.date(2025, 11, 1), dt.date(2026, 12, 31))
    )
    day = lo + dt.timedelta(days=int(rng.integers((hi - lo).days + 1)))
    hour = 12 if rng.random() < 0.6 else 0
    return f"{day.isoformat()}T{hour:02d}:00:00.000Z"


@lru_cache(maxsize=4)
def _universe(seed: int) -> _Universe:
    rng = _rng(seed, _STREAM_UNIVERSE)
    condition_ids = tuple("0x" + _digest(seed, "condition", i).hex() for i in range(N_CONDITIONS))
    tokens = tuple((_token_id(seed, i, 0), _token_id(seed, i, 1)) for i in range(N_CONDITIONS))
    orphan_tokens = tuple(_token_id(seed, "orphan", k) for k in range(N_ORPHAN_TOKENS))
    all_tokens = [t for pair in tokens for t in pair] + list(orphan_tokens)
    if len(set(all_tokens)) != len(all_tokens) or len(set(condition_ids)) != N_CONDITIONS:
        raise AssertionError("hash collision in sample ids")  # astronomically unlikely

    # Roles: the permutation interleaves kinds so that no consumer can rely on file order.
    # The first N_UNKNOWN_MAP of the permutation get no market id ("unknown" in the map).
    perm = [int(i) for i in rng.permutation(N_CONDITIONS)]
    listed = perm[N_UNKNOWN_MAP : N_UNKNOWN_MAP + N_LISTED]
    others = perm[N_UNKNOWN_MAP + N_LISTED :]
    traded, idle = listed[:N_TRADED], listed[N_TRADED:]

    outcomes: list[str | None] = [None] * N_CONDITIONS
    for group, n_resolved in (
        (traded, N_TRADED_RESOLVED),
        (idle, N_LISTED_IDLE_RESOLVED),
        (others, N_OTHER_RESOLVED),
    ):
        chosen = rng.choice(len(group), size=n_resolved, replace=False)
        for j in chosen:
            outcomes[group[int(j)]] = "YES" if rng.random() < 0.42 else "NO"

    ids = rng.choice(np.arange(500_000, 700_000), size=N_CONDITIONS - N_UNKNOWN_MAP, replace=False)
    market_ids: list[str | None] = [None] * N_CONDITIONS
    for cond, mid in zip(listed + others, ids):
        market_ids[cond] = str(int(mid))

    # Buckets for listed markets: showcases first, then one of each bucket among the
    # traded ones, the rest weighted.
    buckets = list(_ARCHETYPES)
    weights = np.array([_ARCHETYPES[b]["weight"] for b in buckets])
    weights /= weights.sum()
    showcase_at = {2 + 5 * k: k for k in range(len(_SHOWCASE))}  # spread over popularity
    forced = {40 + k: b for k, b in enumerate(buckets)}
    markets: list[_Market] = []
    used: set[str] = set()
    for pos, cond in enumerate(listed):
        resolved = outcomes[cond] is not None
        if pos in showcase_at:
            k = showcase_at[pos]
            question, category, tags = _SHOWCASE[k]
            bucket = _SHOWCASE_BUCKETS[k]
        else:
            bucket = forced.get(pos) or buckets[int(rng.choice(len(buckets), p=weights))]
            question, category, tags = _market_text(rng, bucket, used)
        used.add(question)
        event_id = _slug(question) if rng.random() < 0.6 else None
        markets.append(
            _Market(
                cond,
                market_ids[cond] or "",
                question,
                category,
                tuple(tags),
                bucket,
                event_id,
                _end_date(rng, resolved),
            )
        )
    markets.sort(key=lambda m: int(m.market_id))

    # Prices: resolved markets drift towards their outcome, so PnL has winners and losers.
    p_yes = np.empty(N_TRADED)
    for k, cond in enumerate(traded):
        if outcomes[cond] == "YES":
            p_yes[k] = rng.uniform(0.55, 0.95)
        elif outcomes[cond] == "NO":
            p_yes[k] = rng.uniform(0.05, 0.45)
        else:
            p_yes[k] = rng.uniform(0.10, 0.90)
    ticks = np.where(rng.random(N_TRADED) < 0.85, 100, 1000)
    popularity = 1.0 / np.arange(1, N_TRADED + 1) ** 1.05
    orphan_p = tuple(float(x) for x in rng.uniform(0.2, 0.8, N_ORPHAN_TOKENS))

    wrng = _rng(seed, _STREAM_WALLETS)
    wallets = tuple("0x" + _digest(seed, "wallet", i)[:20].hex() for i in range(N_WALLETS))
    mixed = wrng.random(N_WALLETS) < MIXED_CASE_SHARE
    wallets_mixed = tuple(_checksum_like(w) if m else w for w, m in zip(wallets, mixed))
    order = [int(i) for i in wrng.permutation(N_WALLETS)]
    market_makers = tuple(order[:N_MARKET_MAKERS])
    whales = tuple(order[N_MARKET_MAKERS : N_MARKET_MAKERS + N_WHALES])
    retail = tuple(order[N_MARKET_MAKERS + N_WHALES :])
    retail_weights = 1.0 / np.arange(1, len(retail) + 1) ** 1.1
    # A wallet trades a stable handful of tokens, so its buys and sells meet the same
    # positions across days although every day is generated independently.
    portfolios, holders = [], {}
    for slot in range(len(retail)):
        size = 30 if slot < 10 else int(wrng.integers(2, 10))
        ks = wrng.choice(N_TRADED, size=size, replace=False, p=popularity / popularity.sum())
        picks = tuple((int(k), 0 if wrng.random() < 0.6 else 1) for k in ks)
        portfolios.append(list(picks))
    # Every traded condition must trade within a normal window: give the ones no wallet
    # picked to the busiest wallets.
    held = {k for picks in portfolios for k, _ in picks}
    for n, k in enumerate(k for k in range(N_TRADED) if k not in held):
        portfolios[n % 20].append((k, 0 if wrng.random() < 0.6 else 1))
    for slot, picks in enumerate(portfolios):
        for pick in picks:
            holders.setdefault(pick, []).append(slot)

    return _Universe(
        condition_ids=condition_ids,
        tokens=tokens,
        market_ids=tuple(market_ids),
        outcomes=tuple(outcomes),
        markets=tuple(markets),
        traded=tuple(traded),
        traded_weights=popularity / popularity.sum(),
        p_yes=p_yes,
        ticks=ticks,
        orphan_tokens=orphan_tokens,
        orphan_p=orphan_p,
        wallets=wallets,
        wallets_mixed=wallets_mixed,
        market_makers=market_makers,
        whales=whales,
        retail=retail,
        retail_weights=retail_weights / retail_weights.sum(),
        portfolios=tuple(tuple(p) for p in portfolios),
        holders={k: tuple(v) for k, v in holders.items()},
        long_tail=tuple(min(p for p in holders if p[0] == k) for k in range(N_TRADED)),
    )


# ---------------------------------------------------------------------------------------
# fills: a day depends on (seed, day) only
# ---------------------------------------------------------------------------------------


def _quantity(rng: np.random.Generator) -> int:
    """Base units, a multiple of 0.01 token so every tick price gives integer collateral."""
    tokens = min(max(float(rng.lognormal(np.log(60.0), 1.3)), 1.0), 250_000.0)
    return round(tokens * 100) * 10_000


def _day_events(seed: int, day: dt.date) -> list[dict]:
    u = _universe(seed)
    rng = _rng(seed, _STREAM_DAY, day.toordinal())
    day_start = int(dt.datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())

    p_today = np.clip(u.p_yes + rng.normal(0.0, 0.03, N_TRADED), 0.02, 0.98)
    # Popularity alone would leave the long tail untraded for weeks; a fixed rotation gives
    # every traded condition a fill at least once per LONG_TAIL_CYCLE days.
    scheduled = [k for k in range(N_TRADED) if (day.toordinal() + k) % LONG_TAIL_CYCLE == 0]
    n_matches = int(rng.poisson(MATCHES_PER_DAY)) + len(scheduled)
    forced = dict(zip(rng.permutation(n_matches)[: len(scheduled)].tolist(), scheduled))
    maker_counts = rng.choice(3, size=n_matches, p=MAKER_COUNT_P) + 1

    # Activity peaks in US hours; bursts then pin groups of matches to one second.
    centre = rng.normal(16 * 3600, 4 * 3600, n_matches)
    flat = rng.uniform(0, 86400, n_matches)
    seconds = np.where(rng.random(n_matches) < 0.7, centre, flat).astype(np.int64) % 86400
    pos = 0
    for _ in range(int(rng.integers(*BURSTS_PER_DAY))):
        # A match adds at most 4 events, so stopping at the first total >= target keeps
        # every burst within BURST_EVENTS.
        target = int(rng.integers(BURST_EVENTS[0], BURST_EVENTS[1] - 2))
        second = int(rng.integers(0, 86400))
        events = 0
        while pos < n_matches and events < target:
            events += int(maker_counts[pos]) + 1
            seconds[pos] = second
            pos += 1
    # Polymarket trades around the clock: the day's last match closes it, so a run at any
    # time of the next day finds fills under the health check's 24 h (no new draw: the
    # other matches stay as they were)
    seconds[-1] = 86_399

    matches: list[dict] = []
    for m in range(n_matches):
        matches.append(_retail_match(u, rng, p_today, int(maker_counts[m]), int(seconds[m]), forced.get(m)))
    if day.toordinal() % 4 == 0:
        matches.append(_whale_match(u, rng, p_today, big=day.toordinal() % 8 == 0))

    rows: list[dict] = []
    for match in matches:
        ts = day_start + match["second"]
        tx = "0x" + rng.bytes(32).hex()
        for ev in match["events"]:
            order_hash = "0x" + rng.bytes(32).hex()
            rows.append(
                {
                    "id": f"{tx}_{order_hash}",
                    "timestamp": ts,
                    "transaction_hash": tx,
                    "order_hash": order_hash,
                    "maker": _render(u, rng, ev["maker"]),
                    "taker": EXCHANGE if ev["taker"] is None else _render(u, rng, ev["taker"]),
                    "maker_asset_id": ev["maker_asset"],
                    "taker_asset_id": ev["taker_asset"],
                    "maker_amount_filled": str(ev["maker_amount"]),
                    "taker_amount_filled": str(ev["taker_amount"]),
                    "fee": str(ev["fee"]),
                    "vid": 0,
                    "block_number": _BLOCK_AT_EPOCH + (ts - _BLOCK_EPOCH) // 2,
                    "chain_id": CHAIN_ID,
                    "_gs_chain": "matic",
                    "_gs_gid": rng.bytes(16).hex(),
                    "_gs_op": "c",
                }
            )

    # vid: the indexer's monotonically increasing row version, here block-ordered.
    per_block: dict[int, int] = {}
    for row in sorted(rows, key=lambda r: r["timestamp"]):  # stable: match order in a block
        n = per_block.get(row["block_number"], 0)
        per_block[row["block_number"]] = n + 1
        row["vid"] = max(row["block_number"], 0) * 10_000 + n
    return [rows[int(i)] for i in rng.permutation(len(rows))]


def _render(u: _Universe, rng: np.random.Generator, wallet: int) -> str:
    mixed = u.wallets_mixed[wallet]
    return mixed if mixed != u.wallets[wallet] and rng.random() < 0.5 else u.wallets[wallet]


def _match_events(
    taker: int,
    makers: list[int],
    token: str,
    taker_buys: bool,
    quantities: list[int],
    prices: list[int],
    tick: int,
    fee: int,
) -> list[dict]:
    """One event per maker order plus the taker's own order, as the exchange emits them."""
    events, total_q, total_c = [], 0, 0
    for maker, q, t in zip(makers, quantities, prices):
        c = q * t // tick
        total_q, total_c = total_q + q, total_c + c
        if taker_buys:  # the maker sells tokens for collateral
            events.append(
                {
                    "maker": maker,
                    "taker": taker,
                    "maker_asset": token,
                    "taker_asset": COLLATERAL,
                    "maker_amount": q,
                    "taker_amount": c,
                    "fee": 0,
                }
            )
        else:  # the maker buys tokens with collateral
            events.append(
                {
                    "maker": maker,
                    "taker": taker,
                    "maker_asset": COLLATERAL,
                    "taker_asset": token,
                    "maker_amount": c,
                    "taker_amount": q,
                    "fee": 0,
                }
            )
    if taker_buys:
        events.append(
            {
                "maker": taker,
                "taker": None,
                "maker_asset": COLLATERAL,
                "taker_asset": token,
                "maker_amount": total_c,
                "taker_amount": total_q,
                "fee": fee,
            }
        )
    else:
        events.append(
            {
                "maker": taker,
                "taker": None,
                "maker_asset": token,
                "taker_asset": COLLATERAL,
                "maker_amount": total_q,
                "taker_amount": total_c,
                "fee": fee,
            }
        )
    return events


def _walk_book(rng: np.random.Generator, price: float, tick: int, n: int, taker_buys: bool) -> list[int]:
    lo, hi = tick // 100, 99 * tick // 100
    mid = min(max(price + float(rng.normal(0, 0.015)), 0.01), 0.99)
    t = min(max(round(mid * tick), lo), hi)
    out = []
    for _ in range(n):
        out.append(t)
        step = int(rng.integers(0, 2)) * (tick // 100)
        t = min(t + step, hi) if taker_buys else max(t - step, lo)
    return out


def _retail_match(
    u: _Universe,
    rng: np.random.Generator,
    p_today: np.ndarray,
    n_makers: int,
    second: int,
    condition: int | None = None,
) -> dict:
    """A retail taker trades a token of its portfolio (of `condition`, when scheduled)."""
    if condition is not None:
        pick = u.long_tail[condition]
        slot = _pick(rng, u.holders[pick])
    else:
        slot = int(rng.choice(len(u.retail), p=u.retail_weights))
    taker = u.retail[slot]
    holders: tuple[int, ...] = ()
    if condition is not None:
        k, outcome = u.long_tail[condition]
        token = u.tokens[u.traded[k]][outcome]
        price = float(p_today[k]) if outcome == 0 else 1.0 - float(p_today[k])
        tick = int(u.ticks[k])
        holders = u.holders[(k, outcome)]
    elif rng.random() < ORPHAN_MATCH_P:
        j = int(rng.integers(N_ORPHAN_TOKENS))
        token, price, tick = u.orphan_tokens[j], u.orphan_p[j], 100
    else:
        k, outcome = _pick(rng, u.portfolios[slot])
        token = u.tokens[u.traded[k]][outcome]
        price = float(p_today[k]) if outcome == 0 else 1.0 - float(p_today[k])
        tick = int(u.ticks[k])
        holders = u.holders[(k, outcome)]
    taker_buys = bool(rng.random() < TAKER_BUY_P)
    mm_p = MM_ASK_P if taker_buys else MM_BID_P
    makers: list[int] = []
    while len(makers) < n_makers:
        if rng.random() < mm_p or len(holders) < 2:
            w = _pick(rng, u.market_makers)
        else:
            w = u.retail[_pick(rng, holders)]
        if w != taker and w not in makers:
            makers.append(w)
    quantities = [_quantity(rng) for _ in makers]
    prices = _walk_book(rng, price, tick, n_makers, taker_buys)
    fee = 0
    if rng.random() < FEE_P:
        fee = sum(q * t // tick for q, t in zip(quantities, prices)) // 500  # 0.2 %
    return {
        "second": second,
        "events": _match_events(taker, makers, token, taker_buys, quantities, prices, tick, fee),
    }


def _whale_match(u: _Universe, rng: np.random.Generator, p_today: np.ndarray, big: bool) -> dict:
    """A whale sweeps market makers; a `big` one has collateral x 10^6 above 2^63."""
    if big:  # sweep a near-certain outcome, where such a price is plausible
        sure = np.maximum(p_today, 1.0 - p_today) >= 0.85
        w = u.traded_weights * sure if sure.any() else u.traded_weights
        k = int(rng.choice(N_TRADED, p=w / w.sum()))
    else:
        k = int(rng.choice(N_TRADED, p=u.traded_weights))
    yes, no = u.tokens[u.traded[k]]
    tick = int(u.ticks[k])
    if big:
        total = int(rng.integers(1_000, 1_200)) * 10**10  # 1.0e13 .. 1.2e13
        price_t = int(rng.integers(93, 99)) * tick // 100  # 0.93 .. 0.98
        token = yes if p_today[k] >= 0.5 else no
    else:
        total = int(rng.integers(450, 600)) * 10**10  # ~5e12
        token = yes if rng.random() < 0.5 else no
        p = float(p_today[k]) if token == yes else 1.0 - float(p_today[k])
        price_t = int(np.clip(round(p * tick), tick // 100, 99 * tick // 100))
    n_makers = int(rng.integers(1, 4))
    makers = [int(w) for w in rng.choice(u.market_makers, size=n_makers, replace=False)]
    cuts = np.sort(rng.choice(np.arange(1, 100), size=n_makers - 1, replace=False)) if n_makers > 1 else []
    bounds = [0, *[int(c) for c in cuts], 100]
    quantities = [total * (b - a) // 100 for a, b in itertools.pairwise(bounds)]
    taker = _pick(rng, u.whales)
    second = int(rng.integers(13 * 3600, 22 * 3600))
    return {
        "second": second,
        "events": _match_events(taker, makers, token, True, quantities, [price_t] * n_makers, tick, 0),
    }


def _day_file_bytes(seed: int, day: dt.date) -> tuple[bytes, list[dict]]:
    rows = _day_events(seed, day)
    text = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in rows)
    return gzip.compress(text.encode(), compresslevel=6, mtime=0), rows


# ---------------------------------------------------------------------------------------
# writing
# ---------------------------------------------------------------------------------------


def _write_if_changed(path: Path, data: bytes) -> bool:
    """Atomic replace (readers never see half a file); identical files are left untouched."""
    try:
        if path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; these are shareable data files
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True


def _iso_ms(moment: dt.datetime) -> str:
    moment = moment.astimezone(UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}Z"


def _as_day(anchor: dt.date) -> dt.date:
    if isinstance(anchor, dt.datetime):
        if anchor.tzinfo is None:
            raise ValueError("anchor datetime must be timezone-aware (UTC days are meant)")
        return anchor.astimezone(UTC).date()
    return anchor


def _as_utc(moment: dt.datetime) -> dt.datetime:
    if not isinstance(moment, dt.datetime) or moment.tzinfo is None:
        raise ValueError("a timezone-aware datetime is required; naive times are ambiguous")
    return moment.astimezone(UTC)


def _check_args(seed: int, days: int | None = None) -> None:
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if days is not None and days < 1:
        raise ValueError(f"days must be at least 1, got {days!r}")


def fill_file_name(day: dt.date) -> str:
    """The file name a day's fills live under; names sort in time order like Goldsky's."""
    return FILL_FILE_PATTERN.format(day=day.isoformat())


def _generate_fills(out_dir: Path, anchor: dt.date, days: int, seed: int) -> tuple[list[Path], int, set[str]]:
    _check_args(seed, days)
    anchor = _as_day(anchor)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths, n_events, tokens = [], 0, set()
    for offset in range(days - 1, -1, -1):
        day = anchor - dt.timedelta(days=offset)
        data, rows = _day_file_bytes(seed, day)
        path = out_dir / fill_file_name(day)
        _write_if_changed(path, data)
        paths.append(path)
        n_events += len(rows)
        for r in rows:
            tokens.add(r["taker_asset_id"] if r["maker_asset_id"] == COLLATERAL else r["maker_asset_id"])
    return paths, n_events, tokens


def generate_fills(
    out_dir: Path, anchor: dt.date, *, days: int = DEFAULT_DAYS, seed: int = DEFAULT_SEED
) -> list[Path]:
    """Write one Goldsky-shaped gzip JSONL file per UTC day ending at `anchor`.

    Each day is generated from (seed, day) alone, so a later anchor reproduces the shared
    days byte for byte and only adds files; files already holding the right bytes are not
    rewritten (their mtime and any load manifest stay valid). Files outside the window are
    left alone. Returns the window's paths, oldest first.
    """
    return _generate_fills(out_dir, anchor, days, seed)[0]


def _resolution_doc(seed: int, reference_time: dt.datetime) -> dict:
    u = _universe(seed)
    rng = _rng(seed, _STREAM_REFERENCE)
    # Same draws whatever the anchor: only the fetch times move with it.
    null_time = rng.random(N_CONDITIONS) < 0.25
    offsets_ms = rng.integers(0, 3 * 86_400_000, N_CONDITIONS)
    entries, resolved = [], 0
    for i, cid in enumerate(u.condition_ids):
        mid, outcome = u.market_ids[i], u.outcomes[i]
        if mid is None:
            entries.append(
                {
                    "condition_id": cid,
                    "market_id": "unknown",
                    "resolved_outcome": None,
                    "payout_yes": None,
                    "payout_no": None,
                    "resolved_at": None,
                    "error": "No market_id available",
                }
            )
            continue
        if outcome is None:
            entries.append(
                {
                    "condition_id": cid,
                    "market_id": mid,
                    "resolved_outcome": None,
                    "payout_yes": None,
                    "payout_no": None,
                    "resolved_at": None,
                }
            )
            continue
        resolved += 1
        at = None if null_time[i] else _iso_ms(reference_time - dt.timedelta(milliseconds=int(offsets_ms[i])))
        entries.append(
            {
                "condition_id": cid,
                "market_id": mid,
                "resolved_outcome": outcome,
                "payout_yes": RESOLUTION_PAYOUTS[outcome][0],
                "payout_no": RESOLUTION_PAYOUTS[outcome][1],
                "resolved_at": at,
            }
        )
    return {
        "total_conditions": len(entries),
        "resolved_conditions": resolved,
        "last_updated": _iso_ms(reference_time),
        "resolutions": entries,
    }


def _markets_bytes(seed: int) -> bytes:
    u, lines = _universe(seed), []
    for m in u.markets:
        yes, no = u.tokens[m.condition]
        lines.append(
            json.dumps(
                {
                    "condition_id": u.condition_ids[m.condition],
                    "market_id": m.market_id,
                    "question": m.question,
                    "category": m.category,
                    "tags": list(m.tags),
                    "token_ids": [yes, no],
                    "event_id": m.event_id,
                    "end_date": m.end_date,
                },
                separators=(",", ":"),
                ensure_ascii=False,
            )
        )
    return ("\n".join(lines) + "\n").encode()


def _definitions_bytes() -> bytes:
    doc = {
        "version": 1,
        "last_updated": DEFINITIONS_UPDATED,
        "default": UNCATEGORIZED,
        "categories": [dict(c) for c in CATEGORY_DEFINITIONS_LIST],
    }
    return (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode()


def _write_reference_files(
    data_dir: Path, reference_time: dt.datetime, marker_day: dt.date, seed: int
) -> dict:
    _check_args(seed)
    data_dir = Path(data_dir)
    targets = [data_dir / n for n in (RESOLUTION_MAP, MARKETS, CATEGORY_DEFINITIONS)]
    marker = data_dir / SAMPLE_MARKER
    present = [p.name for p in targets if p.exists()]
    if present and not marker.exists():
        raise SampleDataError(
            f"{data_dir} holds {', '.join(present)} without a {SAMPLE_MARKER} marker: they look "
            "like real reference files; refusing to overwrite them with sample data"
        )
    # Marker first: a crash half-way leaves files that are still recognisably ours.
    _write_if_changed(marker, f"{marker_day.isoformat()}\n".encode())
    doc = _resolution_doc(seed, reference_time)
    _write_if_changed(data_dir / RESOLUTION_MAP, (json.dumps(doc, indent=2) + "\n").encode())
    _write_if_changed(data_dir / MARKETS, _markets_bytes(seed))
    _write_if_changed(data_dir / CATEGORY_DEFINITIONS, _definitions_bytes())
    # the sample world lives on the run's clock: a file without a `last_updated` header
    # (markets.jsonl) is as fresh as the map, by its modification time
    stamp = reference_time.timestamp()
    os.utime(data_dir / MARKETS, (stamp, stamp))
    return doc


def generate_reference_files(data_dir: Path, anchor: dt.datetime, *, seed: int = DEFAULT_SEED) -> None:
    """Write the resolution map, markets and category definitions as of `anchor`.

    `anchor` (timezone-aware) is the map's `last_updated` and the clock its fetch times
    count back from; the markets and definitions do not depend on it. The `.sample` marker
    (the anchor's UTC date) is written first so a caller can always tell these files from a
    user's real ones; real files without a marker are never overwritten.
    """
    moment = _as_utc(anchor)
    _write_reference_files(data_dir, moment, moment.date(), seed)


def generate_sample(
    fills_dir: Path,
    data_dir: Path,
    anchor: dt.date,
    *,
    days: int = DEFAULT_DAYS,
    seed: int = DEFAULT_SEED,
    now: dt.datetime | None = None,
) -> SampleSummary:
    """Write a complete, internally consistent sample and report its true counts.

    Fill files cover whole UTC days up to and including `anchor` (pick the last complete
    day). `now` only stamps the reference files; by default it is the midnight that closes
    the anchor day, which keeps the whole sample a pure function of (seed, anchor, days).
    """
    _check_args(seed, days)
    day = _as_day(anchor)
    moment = (
        _as_utc(now)
        if now is not None
        else dt.datetime(day.year, day.month, day.day, tzinfo=UTC) + dt.timedelta(days=1)
    )
    paths, n_events, tokens = _generate_fills(Path(fills_dir), day, days, seed)
    doc = _write_reference_files(Path(data_dir), moment, day, seed)
    u = _universe(seed)
    token_condition = {t: i for i, pair in enumerate(u.tokens) for t in pair}
    traded = {token_condition[t] for t in tokens if t in token_condition}
    return SampleSummary(
        anchor=day,
        fill_files=paths,
        n_fills=n_events,
        n_markets=len(u.markets),
        n_traded_conditions=len(traded),
        n_resolved_conditions=doc["resolved_conditions"],
        n_map_entries=doc["total_conditions"],
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ingest.sample_data", description="Write the deterministic Polymarket sample data set."
    )
    parser.add_argument("--fills-dir", type=Path, required=True, help="where the daily fill files go")
    parser.add_argument("--data-dir", type=Path, required=True, help="where the reference files go")
    parser.add_argument(
        "--anchor", type=dt.date.fromisoformat, required=True, help="last UTC day to generate, YYYY-MM-DD"
    )
    parser.add_argument("--days", type=int, default=DEFAULT_DAYS)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument(
        "--now",
        type=lambda s: dt.datetime.fromisoformat(s.replace("Z", "+00:00")),
        default=None,
        help="reference-file timestamp (ISO-8601 with offset)",
    )
    args = parser.parse_args(argv)
    try:
        summary = generate_sample(
            args.fills_dir, args.data_dir, args.anchor, days=args.days, seed=args.seed, now=args.now
        )
    except (SampleDataError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(
        json.dumps(
            {
                "anchor": summary.anchor.isoformat(),
                "fill_files": len(summary.fill_files),
                "n_fills": summary.n_fills,
                "n_markets": summary.n_markets,
                "n_traded_conditions": summary.n_traded_conditions,
                "n_resolved_conditions": summary.n_resolved_conditions,
                "n_map_entries": summary.n_map_entries,
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
