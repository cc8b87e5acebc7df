"""factory_boy factories for tests."""

from __future__ import annotations

import factory

from apps.accounts.models import User
from core.text import word_diff, word_levenshtein


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.test")
    password = factory.PostGenerationMethodCall("set_password", "correct horse battery")


class InteractionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "feedback.Interaction"

    user = factory.SubFactory(UserFactory)
    prompt = factory.Sequence(lambda n: f"Summarize news item {n}: the council met on Monday.")
    source = "news"
    output = "The council met on Monday and approved the new tram line."
    model_id = "attune/style-lm"


class RatingFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "feedback.Rating"

    interaction = factory.SubFactory(InteractionFactory)
    user = factory.SelfAttribute("interaction.user")
    stars = 4


class EditFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "feedback.Edit"

    interaction = factory.SubFactory(InteractionFactory)
    user = factory.SelfAttribute("interaction.user")
    original = factory.SelfAttribute("interaction.output")
    edited = "Big news! The council said yes to the new tram line on Monday."
    distance = factory.LazyAttribute(lambda e: word_levenshtein(e.original, e.edited))
    diff = factory.LazyAttribute(lambda e: [op.as_dict() for op in word_diff(e.original, e.edited)])


class ComparisonFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "feedback.Comparison"

    user = factory.SubFactory(UserFactory)
    prompt = factory.Sequence(lambda n: f"Write a greeting {n}.")
    source = "email"
    response_a = "Dear colleagues, good morning."
    response_b = "Hi all! 👋"
    choice = "b"


class PersonaFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "personas.PersonaProfile"

    user = factory.SubFactory(UserFactory)
    text = "I teach primary school."
    attributes = factory.LazyFunction(lambda: {"role": "teacher"})
