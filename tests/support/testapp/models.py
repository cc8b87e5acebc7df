from django.db import models
from pgvector.django import VectorField

from apps.common.models import OwnedModel


class Note(OwnedModel):
    text = models.CharField(max_length=200)
    embedding = VectorField(dimensions=3, null=True)
