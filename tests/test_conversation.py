"""Follow-up questions: which are follow-ups, and the query each one is searched with."""

from __future__ import annotations

import pytest

from assistant.conversation import Turn, build_query, content_words, is_follow_up, next_turn, topic_of


@pytest.mark.parametrize("question", [
    "and when was it adopted?",
    "And who wrote it?",
    "what about the defence alliance?",
    "When was it adopted?",
    "Who leads them?",
    "but why?",
])
def test_follow_ups_are_recognised(question: str) -> None:
    assert is_follow_up(question)


@pytest.mark.parametrize("question", [
    "What is the Korean AI strategy?",
    "Where was Michal Natorski based during his fellowship?",
    "What did Korea focus on during its previous Security Council presidency?",
    "Which navigation app do people use in Seoul instead of Google Maps?",
    "Why is AI called dual-use?",
])
def test_self_contained_questions_are_not_follow_ups(question: str) -> None:
    assert not is_follow_up(question)


def test_topic_is_the_content_words_in_order() -> None:
    assert topic_of("What is the Korean AI strategy?") == "Korean AI strategy"
    assert content_words("Who is it about?") == []


def test_follow_up_gets_the_topic_of_the_conversation() -> None:
    first = next_turn("What is the Korean AI strategy?")
    assert first.query == "What is the Korean AI strategy?" and first.topic == "Korean AI strategy"
    second = next_turn("and when was it adopted?", [first])
    assert second.query == "Korean AI strategy: when was it adopted?"
    third = next_turn("Who wrote it?", [first, second])  # the topic carries over follow-ups
    assert third.query == "Korean AI strategy: Who wrote it?"


def test_new_subject_starts_a_new_topic() -> None:
    history = [next_turn("What is the Korean AI strategy?")]
    turn = next_turn("What is the population of South Korea?", history)
    assert turn.query == "What is the population of South Korea?" and turn.topic == "population South Korea"


def test_follow_up_without_history_is_searched_as_typed() -> None:
    query = build_query("and when was it adopted?", [])
    assert query.text == "and when was it adopted?" and not query.follow_up


def test_white_space_is_collapsed() -> None:
    query = build_query("  and   when was it\nadopted? ", [Turn("q", "q", "Korean AI strategy")])
    assert query.text == "Korean AI strategy: when was it adopted?" and query.follow_up
