"""docs/config.md documents every key, flag and variable the built-in packs declare."""

from __future__ import annotations

from pathlib import Path

from autoglm_doctor import packs
from autoglm_doctor.configfile.rules import config_rules, env_rules, launch_rules

DOC = (Path(__file__).resolve().parents[1] / "docs" / "config.md").read_text(encoding="utf-8")


def test_every_key_flag_and_variable_is_documented() -> None:
    default = packs.load("open-autoglm").sections
    phone = packs.load("open-autoglm-phone").sections
    server = packs.load("open-autoglm-server").sections
    names = [f"`{r.key}" for r in config_rules(default)]
    names += [f"`--{r.key}`" for r in launch_rules(server).flags]
    names += [f"`{r.key}`" for r in env_rules(phone)]
    missing = [n for n in names if n not in DOC]
    assert missing == []


def test_interpolation_forms_are_documented() -> None:
    for form in ("`${NAME}`", "`${NAME:-default}`", "`${NAME:default}`", "`${NAME-default}`", "`$${`"):
        assert form in DOC
