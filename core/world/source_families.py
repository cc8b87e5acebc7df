"""The six context families of the offline world: slot samplers and templates.

Each fact has a few phrasings of its clause. A context states the phrasing it drew in its
document, so a summary can keep the document's wording; each value follows words that are rare in
its document, so the fact is easy to find and to copy.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Source:
    """A template family: a slot sampler, a title, and six facts, each a key slot with a few
    phrasings of its clause. The document template places the chosen clauses: ``{f0}`` as is,
    ``{F0}`` capitalized (at the start of a sentence)."""

    name: str
    label: str
    doc_noun: str
    emojis: tuple[str, ...]
    slots: Callable[[random.Random], dict[str, str]]
    title: str
    document: str
    facts: tuple[tuple[str, tuple[str, ...]], ...]


def _pool(words: str) -> tuple[str, ...]:
    return tuple(words.split())


FIRST = _pool(
    "Ana Maria Omar Lena Jonas Priya Diego Sofia Tomas Nadia Kenji Elena Marco Ines Samuel Hana "
    "Victor Leila Oscar Yara Felix Nora Rafael Mila Hugo Zara Emil Alma Ivan Clara"
)
LAST = _pool(
    "Costa Novak Haddad Berg Okafor Lindqvist Moreau Tanaka Rossi Kowalski Fischer Santos Ibrahim "
    "Larsen Duarte Weber Silva Petrov Nakamura Grant Varga Keller Ortiz Hansen Dubois Mendes Sato "
    "Quinn Brandt Aziz"
)
CITIES = _pool(
    "Lisbon Porto Ghent Utrecht Aarhus Tampere Graz Lyon Bilbao Turin Krakow Brno Leipzig Malmo "
    "Bergen Cork Split Riga Tartu Bologna Seville Basel Dresden Antwerp Gdansk Linz Nantes Padua "
    "Galway Vilnius"
)
MONTHS = _pool(
    "January February March April May June July August September October November December"
)
DAYS = _pool("Monday Tuesday Wednesday Thursday Friday")


def _pick(rng: random.Random, pool: str | tuple[str, ...]) -> str:
    options = pool.split("|") if isinstance(pool, str) else pool
    return rng.choice(options)


def _name(rng: random.Random) -> str:
    return f"{rng.choice(FIRST)} {rng.choice(LAST)}"


def _count(rng: random.Random, low: int, high: int) -> str:
    return f"{rng.randint(low, high):,}"


def _news(rng: random.Random) -> dict[str, str]:
    return {
        "city": rng.choice(CITIES),
        "day": rng.choice(DAYS),
        "project": _pick(rng, "tram lines|bike lanes|a public library|a river park|night buses"),
        "amount": str(rng.randint(12, 95)),
        "mayor": _name(rng),
        "month": rng.choice(MONTHS),
        "residents": _count(rng, 1200, 4800),
        "group": _pick(rng, "Green Streets|Citizens First|Open Roads|Fair Budget Now|Quiet Town"),
        "year": str(rng.randint(2026, 2034)),
    }


def _forum(rng: random.Random) -> dict[str, str]:
    return {
        "handle": f"{rng.choice(FIRST).lower()}_{rng.randint(10, 99)}",
        "forum": _pick(rng, "Home Tech|Urban Cycling|Coffee Gear|Smart Home|Budget Repairs"),
        "item": _pick(rng, "router|e-bike|espresso machine|robot vacuum|laptop|thermostat"),
        "weeks": str(rng.randint(2, 30)),
        "fix1": _pick(rng, "a factory reset|new cables|a firmware update|a full cleaning"),
        "helper": _name(rng),
        "fix2": _pick(rng, "replacing the battery|a new power supply|swapping the fuse"),
        "price": str(rng.randint(31, 180)),
        "store": _pick(rng, "PartsHub|FixMart|VoltShop|GearBay|RepairCo"),
        "replies": str(rng.randint(200, 450)),
    }


def _wiki(rng: random.Random) -> dict[str, str]:
    return {
        "town": _pick(rng, "Eldham|Brenmoor|Kestwick|Harlow Vale|Marston|Dunmere|Ashby Cross"),
        "region": _pick(rng, "Northmark|Vellan|Calder|Westmoor|Orrin|Southdale|Greyhaven"),
        "river": _pick(rng, "Avel|Tarn|Seline|Wendle|Corr|Ister|Mire"),
        "founded": str(rng.randint(1150, 1890)),
        "population": _count(rng, 2000, 90000),
        "industry": _pick(rng, "wool trade|glassmaking|shipbuilding|salt mining|clockmaking"),
        "landmark": _pick(rng, "a stone bridge|a clock tower|a lighthouse|an old mill|a castle"),
        "built": str(rng.randint(1200, 1900)),
        "person": _name(rng),
    }


def _paper(rng: random.Random) -> dict[str, str]:
    return {
        "method": _pick(rng, "FastGrad|TinyRank|LoopNet|SparseMix|DeepTide|QuickFold|NanoSeg"),
        "task": _pick(rng, "image captioning|speech recognition|weather forecasting|code search"),
        "idea": _pick(rng, "sparse attention|contrastive pretraining|graph pooling|distillation"),
        "dataset": _pick(rng, "CityBench|AudioSet-S|StormData|CodeHub-1k|OpenScenes"),
        "gain": str(rng.randint(3, 29)),
        "baseline": _pick(rng, "the transformer baseline|the previous best model|a large CNN"),
        "params": str(rng.randint(100, 900)),
        "hours": str(rng.randint(30, 72)),
        "author": _name(rng),
        "university": f"the University of {rng.choice(CITIES)}",
    }


def _review(rng: random.Random) -> dict[str, str]:
    return {
        "reviewer": _name(rng),
        "brand": _pick(rng, "Arlo|Kestrel|Nimbus|Vanta|Orbit|Lumo|Corvid"),
        "kind": _pick(rng, "headphones|blender|backpack|desk lamp|running shoes|coffee grinder"),
        "stars": f"{rng.randint(1, 5)} out of 5",
        "price": str(rng.randint(20, 400)),
        "weeks": str(rng.randint(2, 19)),
        "pro": _pick(rng, "the battery life|the solid build|the quiet motor|the light weight"),
        "con": _pick(rng, "the short cable|the loud fan|the flimsy zipper|the vague manual"),
        "verdict": _pick(rng, "would buy it again|would not buy it again|would recommend it"),
    }


def _meeting(rng: random.Random) -> dict[str, str]:
    return {
        "team": _pick(rng, "Platform|Design|Growth|Support|Data|Mobile|Billing"),
        "day": str(rng.randint(1, 28)),
        "month": rng.choice(MONTHS),
        "chair": _name(rng),
        "decision": _pick(rng, "delay the launch|hire two engineers|drop the old API|cut costs"),
        "metric": str(rng.randint(10, 95)),
        "owner": _name(rng),
        "action": _pick(rng, "draft the budget|fix the login bug|update the roadmap|book a venue"),
        "deadline": rng.choice(DAYS),
        "risk": _pick(rng, "vendor delays|a tight budget|staff holidays|unclear scope"),
    }


def _facts(spec: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Parse fact specs: a key slot on its own line, then its phrasings, indented."""
    facts: list[tuple[str, list[str]]] = []
    for line in spec.strip().splitlines():
        if line.startswith(" "):
            facts[-1][1].append(line.strip())
        else:
            facts.append((line.strip(), []))
    return tuple((key, tuple(phrasings)) for key, phrasings in facts)


FAMILIES: dict[str, Source] = {
    s.name: s
    for s in (
        Source(
            "news",
            "news item",
            "article",
            ("📰", "💶", "🏛", "👥", "🚧", "📅"),
            _news,
            "Council backs {project}",
            "{day}: {F0}. {F1}. {F2}. {F3}. {F4}. Officials say {f5}.",
            _facts(
                """
city
    the city council of {city} approved funding for {project}
    the city council of {city} voted to fund {project}
    the city council of {city} said yes to {project}
amount
    the plan has a budget of {amount} million euros
    the plan will cost {amount} million euros
    the plan is funded with {amount} million euros
mayor
    Mayor {mayor} said construction starts in {month}
    Mayor {mayor} expects work to begin in {month}
    Mayor {mayor} promised a start in {month}
residents
    the hearing drew about {residents} residents
    the hearing was attended by about {residents} residents
    the hearing filled up with about {residents} residents
group
    the group {group} warned that the plan could face delays
    the group {group} fears long delays
    the group {group} called the plan too risky
year
    the work should be finished by {year}
    the project will be done by {year}
    everything should be ready in {year}
"""
            ),
        ),
        Source(
            "forum",
            "forum post",
            "thread",
            ("💬", "⏳", "🔧", "💡", "💲", "🧵"),
            _forum,
            "Help with my {item}",
            "{F0} in {forum}. {F1}. {F2}. {F3}. Another member says {f4}. So far {f5}.",
            _facts(
                """
handle
    the thread was posted by user {handle}
    the thread was started by user {handle}
    the thread comes from user {handle}
weeks
    their {item} stopped working after {weeks} weeks
    their {item} broke down after {weeks} weeks
    their {item} died after only {weeks} weeks
fix1
    they tried {fix1} but it did not help
    they tried {fix1} without any luck
    they tried {fix1} and nothing changed
helper
    forum member {helper} replied that {fix2} solved it
    forum member {helper} fixed the same problem with {fix2}
    forum member {helper} recommends {fix2}
price
    the part costs about {price} dollars at {store}
    the part sells for about {price} dollars at {store}
    the part is about {price} dollars at {store}
replies
    the thread has {replies} replies
    the thread got {replies} replies
    the thread counts {replies} replies
"""
            ),
        ),
        Source(
            "wiki",
            "wiki article",
            "entry",
            ("📚", "🏰", "👪", "🏭", "🌉", "🎨"),
            _wiki,
            "{town}",
            "{F0}. {F1}. {F2}. {F3}. {F4}. {F5}.",
            _facts(
                """
region
    {town} is a town in the province {region} on the river {river}
    {town} lies in the province {region}, on the river {river}
    {town} sits in the province {region} by the river {river}
founded
    the town was founded in the year {founded}
    the town dates back to the year {founded}
    the town has existed since the year {founded}
population
    the town has about {population} people
    the town is home to about {population} people
    the town counts about {population} people
industry
    the town grew rich from {industry}
    the town made its fortune in {industry}
    the town became known for {industry}
landmark
    its best known landmark is {landmark}, built in {built}
    its most famous sight is {landmark} from {built}
    its main attraction is {landmark}, dating from {built}
person
    the painter {person} was born there
    the painter {person} grew up there
    the painter {person} is its most famous child
"""
            ),
        ),
        Source(
            "paper",
            "paper abstract",
            "abstract",
            ("🔬", "🧠", "📈", "🧮", "⏱", "🎓"),
            _paper,
            "{method}: a new model",
            "We present {method}. {F0}. {F1}. {F2}. {F3}. {F4}. {F5}.",
            _facts(
                """
task
    {method} is a new model for {task}
    {method} is a small network for {task}
    {method} is designed for {task}
idea
    the approach uses {idea}
    the approach relies on {idea}
    the approach is built around {idea}
gain
    on the {dataset} benchmark, it beats {baseline} by {gain} percent
    on the {dataset} benchmark, it improves on {baseline} by {gain} percent
    on the {dataset} benchmark, it outperforms {baseline} by {gain} percent
params
    the model has {params} million parameters
    the model uses only {params} million parameters
    the model needs {params} million parameters
hours
    training takes {hours} hours on one GPU
    training needs {hours} hours on one GPU
    training finishes in {hours} hours on one GPU
author
    the lead author {author} works at {university}
    the lead author {author} is based at {university}
    the lead author {author} is from {university}
"""
            ),
        ),
        Source(
            "review",
            "product review",
            "review",
            ("⭐", "🏷", "💵", "👍", "👎", "🛒"),
            _review,
            "{brand} {kind} review",
            "{F0}. {F1}. {F2}. {F3}. {F4}. {F5}.",
            _facts(
                """
reviewer
    the reviewer {reviewer} is a verified buyer
    the reviewer {reviewer} bought it online
    the reviewer {reviewer} owns two of them
stars
    the {brand} {kind} earned {stars} stars
    the {brand} {kind} got {stars} stars
    the {brand} {kind} was given {stars} stars
price
    it cost {price} dollars
    it sells for {price} dollars
    it was bought for {price} dollars
pro
    the best part is {pro}
    the highlight is {pro}
    the strong point is {pro}
con
    the weak point is {con}
    the main complaint is {con}
    the downside is {con}
weeks
    the buyer used it for {weeks} weeks and {verdict}
    the buyer tested it for {weeks} weeks and {verdict}
    the buyer, after {weeks} weeks, {verdict}
"""
            ),
        ),
        Source(
            "meeting",
            "meeting notes",
            "notes",
            ("📝", "✅", "📊", "👤", "⚠", "📆"),
            _meeting,
            "{team} team meeting",
            "Meeting notes of the {team} team, {month} {day}.\n{F1}.\nDecision: {f0}.\nUpdate:"
            " {f2}.\nAction: {f3}; {f4}.\nRisk: {f5}.",
            _facts(
                """
decision
    the {team} team agreed to {decision}
    the {team} team decided to {decision}
    the {team} team voted to {decision}
chair
    the meeting was led by chair {chair}
    the meeting was run by chair {chair}
    the meeting had chair {chair} in charge
metric
    the team resolved {metric} percent of open tickets
    the team closed {metric} percent of open tickets
    the team has fixed {metric} percent of open tickets
owner
    task owner {owner} will {action}
    task owner {owner} agreed to {action}
    task owner {owner} is going to {action}
deadline
    the deadline is {deadline}
    the due date is {deadline}
    the work is due on {deadline}
risk
    the main risk is {risk}
    the biggest worry is {risk}
    the team is worried about {risk}
"""
            ),
        ),
    )
}
