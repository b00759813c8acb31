"""Test helpers shipped for plugin authors: tiny-model builders live in :mod:`sdk.ml.tiny`; contract suites here.

``from sdk.testing.contract import GeneratorContract`` and ``from sdk.testing.trainer_contract import TrainerContract``
(they import pytest; torch only when a test runs).
"""
from __future__ import annotations
