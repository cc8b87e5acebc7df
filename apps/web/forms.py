"""Forms of the web UI. Every field is bounded by the same limits as the API, so anything a form
can send is either stored or answered with a field error in place, never a server error. Rules
that belong to a service (η bounds, known vectors) are the service's: a view shows its
:class:`core.errors.InvalidValue` on the form (:func:`show_refusal`)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings

from apps.generation.models import LayerSettings
from core.errors import InvalidValue
from core.prompting import build_instruction
from core.serving import LAYERS
from core.world.renderer import TASKS
from core.world.sources import SOURCES

TASK_LABELS = {"summarize": "Summarize", "email": "Write an email"}
SOURCE_CHOICES = [("", "any text"), *((name, spec.label) for name, spec in SOURCES.items())]
MAX_SOURCE_CHARS = 64
MAX_ATTRIBUTES = 50


def show_refusal(form: forms.Form, err: InvalidValue) -> None:
    """A service's refusal shown in place: on the field it names, else above the form."""
    field = err.field if err.field in form.fields else None
    for message in err.messages:
        form.add_error(field, message)


def text_field(
    limit: str, *, required: bool = True, rows: int = 6, **attrs: Any
) -> forms.CharField:
    """A textarea bounded by the setting ``limit`` (characters)."""
    return forms.CharField(
        required=required,
        max_length=getattr(settings, limit),
        widget=forms.Textarea(attrs={"rows": rows, **attrs}),
    )


class AskForm(forms.Form):
    """Ask for a text: a task on a context (the offline world's tasks), or a chat message."""

    mode = forms.ChoiceField(
        choices=[("task", "Task + context"), ("chat", "Chat message")],
        initial="task",
        widget=forms.RadioSelect,
    )
    task = forms.ChoiceField(
        choices=[(t, TASK_LABELS.get(t, t)) for t in TASKS], required=False, initial=TASKS[0]
    )
    source = forms.ChoiceField(choices=SOURCE_CHOICES, required=False, label="Context is a")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["context"] = text_field(
            "ATTUNE_MAX_PROMPT_CHARS", required=False, rows=8, **{"data-draft": "ask-context"}
        )
        self.fields["message"] = text_field(
            "ATTUNE_MAX_PROMPT_CHARS", required=False, rows=4, **{"data-draft": "ask-message"}
        )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("mode") == "task":
            if not data.get("task"):
                self.add_error("task", "Pick a task.")
            if not data.get("context"):
                self.add_error("context", "Paste the text the task is about.")
        elif data.get("mode") == "chat" and not data.get("message"):
            self.add_error("message", "Write a message.")
        return data

    def messages(self) -> list[dict[str, str]]:
        """The chat messages this form asks for; a task is phrased as ``build_instruction``
        phrases it, which the serving process reads back into task and context."""
        data = self.cleaned_data
        if data["mode"] == "chat":
            return [{"role": "user", "content": data["message"]}]
        text = build_instruction(data["task"], data["context"], None, data.get("source") or None)
        return [{"role": "user", "content": text}]


class RateForm(forms.Form):
    rating = forms.ChoiceField(
        choices=[
            ("up", "thumbs up"),
            ("down", "thumbs down"),
            *((str(s), f"{s}★") for s in range(1, 6)),
        ]
    )

    def as_kwargs(self) -> dict[str, Any]:
        value = self.cleaned_data["rating"]
        if value in {"up", "down"}:
            return {"thumbs_up": value == "up"}
        return {"stars": int(value)}


class EditForm(forms.Form):
    action = forms.ChoiceField(choices=[("preview", "Preview"), ("save", "Save")], initial="save")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["edited"] = text_field(
            "ATTUNE_MAX_OUTPUT_CHARS", rows=10, **{"data-draft": "edit"}
        )
        self.fields["edited"].strip = False
        self.fields["edited"].label = "Your version"


class ChoiceForm(forms.Form):
    choice = forms.ChoiceField(choices=[("a", "A is better"), ("b", "B is better"), ("tie", "Tie")])


class PreferenceForm(forms.Form):
    """A preference the user writes: the phrase, and the context it applies to."""

    source = forms.ChoiceField(choices=SOURCE_CHOICES, required=False, label="For")

    def __init__(self, *args: Any, with_context: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["preference"] = text_field("ATTUNE_MAX_PREFERENCE_CHARS", rows=2)
        if with_context:
            self.fields["context_text"] = text_field("ATTUNE_MAX_PROMPT_CHARS", rows=3)
            self.fields["context_text"].label = "Context (an example of the texts it is for)"
            self.fields[
                "context_text"
            ].help_text = "Attune uses this preference for requests similar to this context."
        self.order_fields(["preference", "context_text", "source"])


class PersonaForm(forms.Form):
    attributes = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "role: teacher\ntone: casual"}),
        help_text="One fact per line, as key: value.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["text"] = text_field("ATTUNE_MAX_PERSONA_CHARS", required=False, rows=3)
        self.fields["text"].label = "About me"
        self.order_fields(["text", "attributes"])

    def clean_attributes(self) -> dict[str, str]:
        parsed: dict[str, str] = {}
        lines = [ln for ln in self.cleaned_data["attributes"].splitlines() if ln.strip()]
        if len(lines) > MAX_ATTRIBUTES:
            raise forms.ValidationError(f"At most {MAX_ATTRIBUTES} facts.")
        for number, line in enumerate(lines, start=1):
            key, sep, value = line.partition(":")
            if not sep or not key.strip() or not value.strip():
                raise forms.ValidationError(f"Line {number} is not “key: value”.")
            if len(key.strip()) > 100 or len(value.strip()) > 500:
                raise forms.ValidationError(f"Line {number} is too long.")
            parsed[key.strip()] = value.strip()
        return parsed

    @staticmethod
    def attributes_text(attributes: dict[str, Any]) -> str:
        return "\n".join(f"{key}: {value}" for key, value in attributes.items())


class SlidersForm(forms.Form):
    """One η slider per active preference vector, ranging over ±``ATTUNE_MAX_ABS_ETA``; the bound
    itself is checked by ``apps.adapters.services.set_etas``."""

    def __init__(self, *args: Any, vectors: list[Any], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        limit = settings.ATTUNE_MAX_ABS_ETA
        for vector in vectors:
            self.fields[vector.name] = forms.FloatField(
                label=f"{vector.negative} ↔ {vector.positive}",
                widget=forms.NumberInput(
                    attrs={"type": "range", "min": -limit, "max": limit, "step": 0.1}
                ),
            )


LAYER_LABELS = {
    "memory": "Learned preferences (memory)",
    "persona": "Persona profile",
    "adapter": "My own adapter",
    "vectors": "Style sliders",
}


class LayersForm(forms.Form):
    """The layer switches: a ticked box lets Attune apply that layer to your texts. Prefixed
    (``layer-memory``…) so that its ids never meet the page's other forms' (a slider is named
    after its vector)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("prefix", "layer")
        super().__init__(*args, **kwargs)
        for layer in LAYERS:
            self.fields[layer] = forms.BooleanField(
                required=False,
                label=LAYER_LABELS[layer],
                help_text=LayerSettings.description(layer),
            )


class DeleteEverythingForm(forms.Form):
    confirm = forms.CharField(
        max_length=20,
        label="Type DELETE to confirm",
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )

    def clean_confirm(self) -> str:
        value = self.cleaned_data["confirm"].strip()
        if value.upper() != "DELETE":
            raise forms.ValidationError("Type DELETE (in capitals or not) to confirm.")
        return value
