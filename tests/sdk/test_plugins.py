"""Plugin discovery: a broken plugin is listed with its error and everything else keeps working."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from sdk.errors import InvalidRequest
from sdk.hookspecs import hookimpl
from sdk.params import GenerateParams
from sdk.plugins import PluginRegistry, load_plugins
from sdk.specs import GeneratorSpec


def _spec(gid: str) -> GeneratorSpec:
    return GeneratorSpec(id=gid, title="T", method="M", params=GenerateParams, entry="x:y")


class Good:
    @hookimpl
    def vgen_generators(self):
        return [_spec("good.t2v")]


class Raises:
    @hookimpl
    def vgen_generators(self):
        raise RuntimeError("boom at import of weights table")


class BadId:
    @hookimpl
    def vgen_generators(self):
        return [_spec("No Dots")]


class Duplicate:
    @hookimpl
    def vgen_generators(self):
        return [_spec("good.t2v")]


class NotASpec:
    @hookimpl
    def vgen_generators(self):
        return [SimpleNamespace(id="x.y")]


def test_broken_plugins_are_listed_with_their_error_and_the_rest_works() -> None:
    reg = PluginRegistry([("good", Good()), ("raises", Raises()), ("badid", BadId()), ("dup", Duplicate()),
                          ("notspec", NotASpec())])
    assert list(reg.generators) == ["good.t2v"]
    assert reg.plugins["good"].error is None and reg.plugins["good"].generators == ["good.t2v"]
    assert "boom" in reg.plugins["raises"].error
    assert "No Dots" in reg.plugins["badid"].error
    assert "already registered" in reg.plugins["dup"].error
    assert "GeneratorSpec" in reg.plugins["notspec"].error


def test_unknown_generator_error_lists_known_ids() -> None:
    reg = PluginRegistry([("good", Good())])
    with pytest.raises(InvalidRequest) as err:
        reg.generator("nope.x")
    assert "good.t2v" in err.value.hint and err.value.field == "generator"


def test_installed_plugins_register_through_entry_points() -> None:
    reg = load_plugins(refresh=True)
    assert "modelscope_t2v.t2v" in reg.generators
    assert reg.plugins["modelscope_t2v"].error is None
