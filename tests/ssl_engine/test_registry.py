"""Registry, configs and the light-import contract."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ssl_engine.configs import ALGORITHM_CONFIGS, ALGORITHM_NAMES, TrainConfig, build_configs, validate_config


def test_registry_matches_light_algorithm_names():
    from ssl_engine.algorithms import ALGORITHMS

    assert set(ALGORITHMS) == set(ALGORITHM_NAMES)
    for name, cls in ALGORITHMS.items():
        assert cls.Config is ALGORITHM_CONFIGS[name]
        assert cls.name == name


def test_register_rejects_duplicates():
    from ssl_engine.algorithms import register

    with pytest.raises(ValueError, match="already registered"):
        register("fixmatch")(type("Dup", (), {}))


def test_views_are_declared_not_branched_on():
    from ssl_engine.algorithms import ALGORITHMS

    assert ALGORITHMS["supervised"].views == ()
    for name in ("fixmatch", "freematch", "marginmatch", "multimatch"):
        assert ALGORITHMS[name].views == ("weak", "strong")


def test_validate_config_fills_defaults():
    out = validate_config("multimatch", {"n_heads": 4, "lr": 3e-5})
    assert out["n_heads"] == 4 and out["lr"] == 3e-5 and out["batch_size"] == TrainConfig().batch_size
    train, algo = build_configs("multimatch", {"n_heads": 4})
    assert algo.n_heads == 4 and isinstance(train, TrainConfig)


@pytest.mark.parametrize(
    "algorithm,raw,field",
    [
        ("fixmatch", {"thresold": 0.9}, "thresold"),
        ("fixmatch", {"threshold": "high"}, "threshold"),
        ("fixmatch", {"threshold": 1.5}, "threshold"),
        ("multimatch", {"n_heads": 1}, "n_heads"),
        ("multimatch", {"n_heads": 2.5}, "n_heads"),
        ("supervised", {"n_heads": 3}, "n_heads"),
        ("supervised", {"batch_size": True}, "batch_size"),
        ("supervised", {"labeled_sampling": "magic"}, "labeled_sampling"),
    ],
)
def test_validate_config_names_the_bad_field(algorithm, raw, field):
    with pytest.raises(ValueError, match=repr(field)):
        validate_config(algorithm, raw)


def test_validate_config_rejects_unknown_algorithm():
    with pytest.raises(ValueError, match="unknown algorithm"):
        validate_config("mixmatch", {})


def test_public_modules_do_not_import_torch_or_frameworks():
    code = (
        "import sys, ssl_engine, ssl_engine.configs, ssl_engine.engine, ssl_engine.types, ssl_engine.cli\n"
        "bad = [m for m in ('torch', 'transformers', 'django', 'celery', 'rest_framework', 'annotations')"
        " if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_config_schema_documents_every_field_with_bounds():
    from ssl_engine.configs import config_schema

    for name in ALGORITHM_NAMES:
        specs = config_schema(name)
        names = [s.name for s in specs]
        assert len(names) == len(set(names)), f"{name}: a field is declared twice"
        for s in specs:
            assert s.help, f"{name}.{s.name} has no help text"
            assert s.type in ("int", "float", "bool", "str"), (name, s.name, s.type)
            if s.type in ("int", "float"):
                assert s.min is not None and s.max is not None and s.min <= s.default <= s.max, (name, s.name)
            if s.choices:
                assert s.default in s.choices, (name, s.name)


def test_an_algorithms_own_fields_come_first_and_shared_ones_follow():
    from ssl_engine.configs import config_schema

    names = [s.name for s in config_schema("fixmatch")]
    assert names.index("threshold") < names.index("epochs")
    assert "n_heads" not in names and "n_heads" in [s.name for s in config_schema("multimatch")]


def test_cache_directory_is_not_a_round_setting():
    with pytest.raises(ValueError, match="'cache_dir'"):
        validate_config("supervised", {"cache_dir": "/anywhere"})
