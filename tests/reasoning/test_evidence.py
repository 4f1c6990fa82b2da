"""`reasoning.evidence.evidence_thoughts`: short thoughts about a ranking, from its evidence."""

from __future__ import annotations

from graph_store.types import Chain, HistoryEntry, Item, SharedItem
from reasoning.evidence import MAX_THOUGHTS, evidence_thoughts
from recdata.vocabulary import Vocabulary

HEAT = Item("h1", "Heat (1995)", {"genres": "Action|Crime"})
CASINO = Item("h2", "Casino (1995)", {"genres": "Crime|Drama"})
ALIEN = Item("h3", "Alien (1979)", {"genres": "Horror|Sci-Fi"})
HISTORY = [HistoryEntry(i, ts, None) for ts, i in enumerate((HEAT, CASINO, ALIEN))]


def candidate(n: int, genres: str = "Western") -> Item:
    return Item(f"c{n}", f"Film {n} (2000)", {"genres": genres})


def chain(target: Item, neighbour: str, shared: tuple[Item, ...] = (HEAT, CASINO)) -> Chain:
    items = tuple(SharedItem(i.item_id, i.title, 1, 1) for i in shared)
    return Chain("u", items, neighbour, len(items), target.item_id, target.title, 9, True)


def test_each_thought_names_its_item_and_rank_in_ranking_order() -> None:
    ranking = [candidate(n) for n in range(1, 6)]
    chains = [chain(ranking[2], "v1"), chain(ranking[0], "v2")]
    thoughts = evidence_thoughts(HISTORY, chains, ranking)
    assert thoughts == (
        '"Film 1 (2000)" ranks 1st: you watched "Heat (1995)" and "Casino (1995)"; someone '
        "who also watched them went on to watch it",
        '"Film 3 (2000)" ranks 3rd: you watched "Heat (1995)" and "Casino (1995)"; someone '
        "who also watched them went on to watch it",
    )


def test_the_top_item_gets_its_strongest_chain_and_the_count_of_chains() -> None:
    top = candidate(1)
    weak = chain(top, "v1", shared=(HEAT, CASINO))
    strong = chain(top, "v2", shared=(HEAT, CASINO, ALIEN))
    thoughts = evidence_thoughts(HISTORY, [weak, strong, chain(candidate(2), "v3")], [top])
    assert thoughts[0].endswith(
        '"Heat (1995)", "Casino (1995)" and "Alien (1979)"; someone who '
        "also watched them went on to watch it"
    )
    assert thoughts[1] == '"Film 1 (2000)" ranks 1st: 2 of the 3 chains shown end at it'


def test_items_no_chain_reaches_rest_on_genres_shared_with_the_history() -> None:
    ranking = [candidate(1, "Crime|Western"), candidate(2, "Musical"), candidate(3, "Sci-Fi")]
    thoughts = evidence_thoughts(HISTORY, [], ranking)
    assert thoughts == (
        '"Film 1 (2000)" ranks 1st: it is Crime, like "Casino (1995)" and "Heat (1995)" in '
        "your history",
        '"Film 3 (2000)" ranks 3rd: it is Sci-Fi, like "Alien (1979)" in your history',
    )


def test_a_top_item_without_evidence_says_so_and_nothing_is_invented() -> None:
    thoughts = evidence_thoughts(HISTORY, [], [candidate(1), candidate(2)])
    assert thoughts == (
        '"Film 1 (2000)" ranks 1st: no chain or shared genre reaches it; this is the '
        "model's own call",
    )
    assert evidence_thoughts(HISTORY, [], []) == ()


def test_at_most_five_thoughts_none_repeated_and_the_catalogues_words() -> None:
    ranking = [candidate(n) for n in range(1, 12)]
    chains = [chain(item, f"v{item.item_id}") for item in ranking]
    chains += [chain(ranking[0], "again")]
    music = [
        Chain(
            c.user_id,
            c.shared,
            c.neighbour_id,
            c.overlap,
            c.next_item_id,
            c.next_title,
            9,
            False,
            words=Vocabulary.from_words("listened to", "song"),
        )
        for c in chains
    ]
    thoughts = evidence_thoughts(HISTORY, music, ranking)
    assert len(thoughts) == MAX_THOUGHTS == len(set(thoughts))
    assert [t.split(" ranks ")[1].split(":")[0] for t in thoughts] == [
        "1st",
        "1st",
        "2nd",
        "3rd",
        "4th",
    ]
    assert "you listened to" in thoughts[0] and "also listened to it" in thoughts[0]
    assert evidence_thoughts(HISTORY, music, ranking, limit=2) == thoughts[:2]


def test_genre_facts_name_only_the_quoted_items_genres_never_placeholders_or_itself() -> None:
    mixed = Item("c1", "Film 1 (2000)", {"genres": "Action|Horror|Drama"})
    thoughts = evidence_thoughts(HISTORY, [], [mixed])
    assert thoughts == (  # Heat (Action) is the third alike item: not quoted, not counted
        '"Film 1 (2000)" ranks 1st: it is Horror and Drama, like "Alien (1979)" and '
        '"Casino (1995)" in your history',
    )
    odd = [HistoryEntry(Item("h9", "Odd (1990)", {"genres": "unknown"}), 1, None)]
    placeholder = Item("c2", "Film 2 (2000)", {"genres": "unknown"})
    assert "unknown" not in evidence_thoughts(odd, [], [placeholder])[0]
    seen = [HistoryEntry(HEAT, 1, None)]  # a given candidate the user has already seen
    assert evidence_thoughts(seen, [], [HEAT]) == (
        '"Heat (1995)" ranks 1st: no chain or shared genre reaches it; this is the '
        "model's own call",
    )


def test_a_title_with_double_quotes_is_quoted_as_the_prompt_shows_it() -> None:
    from evaluation.explanations import check_explanation

    odd = Item("c9", "11'09\"01 - September 11", {"genres": "Drama"})
    history = [HistoryEntry(Item("h1", '"Great Performances" Cats', {"genres": "Drama"}), 1, None)]
    thoughts = evidence_thoughts(history, [], [odd])
    assert thoughts == (
        "\"11'09'01 - September 11\" ranks 1st: it is Drama, like "
        "\"'Great Performances' Cats\" in your history",
    )
    shown = [odd.title, history[0].item.title]
    check = check_explanation(thoughts, shown, [("c9", odd.title)], top_id="c9")
    assert check.quoted == check.grounded == 2 and check.agrees


def test_an_untitled_item_is_quoted_as_the_prompt_shows_it() -> None:
    from evaluation.explanations import check_explanation
    from reasoning.prompt import clean_title

    blank = Item("c8", "", {"genres": "Drama"})
    history = [HistoryEntry(Item("h1", "Heat", {"genres": "Drama"}), 1, None)]
    thoughts = evidence_thoughts(history, [], [blank])
    assert thoughts[0].startswith('"untitled" ranks 1st')
    shown = [clean_title(blank.title), "Heat"]  # what the evaluator compares with
    check = check_explanation(thoughts, shown, [("c8", clean_title(blank.title))], top_id="c8")
    assert check.quoted == check.grounded == 2 and check.agrees
