"""Rounds pages: role matrix, start form (422 field errors), htmx polling, model activation, chart."""

from __future__ import annotations

import json
import re

import pytest
from django.urls import reverse
from rounds.conftest import TINY_CONFIG

from annotations.models import ModelVersion, TrainingRound

pytestmark = pytest.mark.django_db

# role -> expected status; None = anonymous (redirect to login), outsider = admin elsewhere (404)
READ = {None: 302, "outsider": 404, "annotator": 200, "reviewer": 200, "admin": 200}
WRITE = {None: 302, "outsider": 404, "annotator": 403, "reviewer": 403}


def _round(project, **kw) -> TrainingRound:
    defaults = {
        "algorithm": "multimatch",
        "status": "succeeded",
        "n_labeled": 10,
        "snapshot": {"label_counts": {"harmful": 5, "unharmful": 5}},
        "metrics": {"test": {"f1": 0.5, "precision": 0.4, "recall": 0.7, "auprc": 0.6, "n": 8}},
    }
    return TrainingRound.objects.create(project=project, **{**defaults, **kw})


@pytest.fixture
def finished(project, users):
    first = _round(project, started_by=users["admin"])
    second = _round(
        project,
        n_labeled=30,
        metrics={
            "test": {"f1": 0.8, "precision": 0.8, "recall": 0.8, "auprc": 0.9, "n": 8},
            "bench:xs": {"f1": 0.7, "precision": 0.7, "recall": 0.7, "auprc": 0.7, "n": 6},
        },
    )
    v1 = ModelVersion.objects.create(
        project=project, training_round=first, path="/m/1", is_active=True, metrics=first.metrics
    )
    v2 = ModelVersion.objects.create(project=project, training_round=second, path="/m/2", metrics=second.metrics)
    return {"rounds": (first, second), "versions": (v1, v2)}


@pytest.mark.parametrize("role", list(READ))
def test_rounds_page_is_visible_to_every_project_member(client_for, project, finished, role):
    round_id = finished["rounds"][0].pk
    for url in (
        reverse("annotations:round_list", args=[project.slug]),
        reverse("annotations:round_detail", args=[project.slug, round_id]),
    ):
        response = client_for(role).get(url)
        assert response.status_code == READ[role], url
        if role is None:
            assert response.url.startswith(reverse("login"))


@pytest.mark.parametrize("role", ["annotator", "reviewer", "admin"])
def test_only_admins_see_the_start_form_and_action_buttons(client_for, project, finished, role):
    html = client_for(role).get(reverse("annotations:round_list", args=[project.slug])).content.decode()
    assert ('id="round-start-form"' in html) is (role == "admin")
    assert (">Activate</button>" in html) is (role == "admin")


@pytest.mark.parametrize("role", list(WRITE))
def test_only_admins_can_start_cancel_or_activate(
    client_for, project, finished, round_items_light, role, django_capture_on_commit_callbacks
):
    queued = TrainingRound.objects.create(project=project, algorithm="fixmatch")  # status queued
    client = client_for(role)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        start = client.post(
            reverse("annotations:round_start", args=[project.slug]),
            {"algorithm": "fixmatch", "config": "{}", "seed": "0"},
        )
    cancel = client.post(reverse("annotations:round_cancel", args=[project.slug, queued.pk]))
    activate = client.post(
        reverse("annotations:model_version_activate", args=[project.slug, finished["versions"][1].pk])
    )
    assert (start.status_code, cancel.status_code, activate.status_code) == (WRITE[role],) * 3
    assert callbacks == []
    queued.refresh_from_db()
    assert queued.status == "queued"
    assert ModelVersion.objects.get(is_active=True).pk == finished["versions"][0].pk


def test_admin_starts_a_round_enqueued_after_commit(
    client_for, project, round_items_light, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client_for("admin").post(
            reverse("annotations:round_start", args=[project.slug]),
            {"algorithm": "multimatch", "config": json.dumps(TINY_CONFIG), "seed": "3"},
        )
    assert response.status_code == 302
    training_round = TrainingRound.objects.get(project=project)
    assert training_round.status == "queued" and training_round.seed == 3
    assert training_round.config["epochs"] == 1 and training_round.config["n_heads"] == 3  # defaults filled in
    assert len(callbacks) == 1


def test_htmx_start_returns_the_form_and_an_out_of_band_table(
    client_for, project, round_items_light, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):
        response = client_for("admin").post(
            reverse("annotations:round_start", args=[project.slug]),
            {"algorithm": "supervised", "config": "", "seed": "0"},
            HTTP_HX_REQUEST="true",
        )
    html = response.content.decode()
    assert response.status_code == 201
    assert 'id="round-start-form"' in html and 'hx-swap-oob="outerHTML"' in html
    assert 'hx-trigger="every 2s"' in html  # a queued round: the table keeps polling


@pytest.mark.parametrize(
    ("config", "needle"),
    [
        ('{"epochs": "many"}', "epochs"),
        ('{"no_such_knob": 1}', "no_such_knob"),
        ('{"threshold": 1.5}', "threshold"),
        ("[1, 2]", "JSON object"),
        ("{oops", "Not valid JSON"),
    ],
)
def test_invalid_config_is_shown_in_the_form_with_422(client_for, project, round_items_light, config, needle):
    response = client_for("admin").post(
        reverse("annotations:round_start", args=[project.slug]),
        {"algorithm": "fixmatch", "config": config, "seed": "0"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 422
    assert needle in response.content.decode()
    assert not TrainingRound.objects.exists()


def test_second_start_while_one_is_active_is_refused_with_a_clear_message(
    client_for, project, round_items_light, django_capture_on_commit_callbacks
):
    active = TrainingRound.objects.create(project=project, algorithm="fixmatch", status="running", number=4)
    client = client_for("admin")
    url = reverse("annotations:round_start", args=[project.slug])
    response = client.post(url, {"algorithm": "fixmatch", "config": "{}", "seed": "0"})
    assert response.status_code == 409
    assert "Round #4 is running; only one round per project runs at a time." in response.content.decode()
    htmx = client.post(url, {"algorithm": "fixmatch", "config": "{}", "seed": "0"}, HTTP_HX_REQUEST="true")
    assert htmx.status_code == 422 and "Round #4 is running" in htmx.content.decode()
    assert TrainingRound.objects.count() == 1 and active.pk


@pytest.mark.parametrize("htmx", [False, True])
def test_start_while_a_round_is_queued_names_it_as_queued_once(client_for, project, round_items_light, htmx):
    """Issue 14.3: the refusal said "running" for a queued round, and showed the error twice."""
    TrainingRound.objects.create(project=project, algorithm="fixmatch", status="queued", number=2)
    extra = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    response = client_for("admin").post(
        reverse("annotations:round_start", args=[project.slug]),
        {"algorithm": "fixmatch", "config": "{}", "seed": "0"},
        **extra,
    )
    html = response.content.decode()
    assert response.status_code == (422 if htmx else 409)
    assert html.count("Round #2 is queued, waiting for a worker;") == 1
    message = html.split("Round #2 is queued", 1)[1].split("</li>", 1)[0].split("</p>", 1)[0]
    assert "running" not in message


def test_api_start_while_a_round_is_queued_is_a_409(project, users, round_items_light):
    from rest_framework.test import APIClient

    TrainingRound.objects.create(project=project, algorithm="fixmatch", status="queued", number=1)
    client = APIClient()
    client.force_authenticate(users["admin"])
    response = client.post(
        reverse("annotations-api:training-round-start", args=[project.slug]), {"algorithm": "supervised"}, format="json"
    )
    assert response.status_code == 409
    assert response.json()["code"] == "round_active"
    assert response.json()["message"].startswith("Round #1 is queued, waiting for a worker;")


def test_polling_stops_when_no_round_is_active(client_for, project, finished):
    client = client_for("annotator")
    url = reverse("annotations:round_list", args=[project.slug])
    done = client.get(url, HTTP_HX_REQUEST="true")
    assert done.status_code == 286 and 'id="rounds-live"' in done.content.decode()
    assert "hx-trigger" not in done.content.decode()
    assert "HX-Request" in done["Vary"]

    TrainingRound.objects.create(
        project=project,
        algorithm="fixmatch",
        status="running",
        progress={"phase": "train", "step": 3, "total": 12, "loss": 0.5},
    )
    live = client.get(url, HTTP_HX_REQUEST="true")
    html = live.content.decode()
    assert live.status_code == 200 and 'hx-trigger="every 2s"' in html
    assert '<progress max="12" value="3">' in html and "<html" not in html


def test_round_detail_shows_the_train_log_and_polls_only_while_active(client_for, project, users):
    training_round = _round(project, train_log=[{"step": 1, "loss": 0.69, "mask_ratio": 0.25}], error="")
    client = client_for("reviewer")
    url = reverse("annotations:round_detail", args=[project.slug, training_round.pk])
    html = client.get(url).content.decode()
    assert "Raw train log (1 rows)" in html and "0.6900" in html
    assert client.get(url, HTTP_HX_REQUEST="true").status_code == 286
    other = reverse("annotations:round_detail", args=[project.slug, training_round.pk + 999])
    assert client.get(other).status_code == 404


def test_admin_activates_a_model_version(client_for, project, finished):
    v1, v2 = finished["versions"]
    response = client_for("admin").post(reverse("annotations:model_version_activate", args=[project.slug, v2.pk]))
    assert response.status_code == 302
    v1.refresh_from_db()
    v2.refresh_from_db()
    assert v2.is_active and not v1.is_active


def test_admin_cancels_a_queued_round(client_for, project):
    queued = TrainingRound.objects.create(project=project, algorithm="fixmatch")
    response = client_for("admin").post(reverse("annotations:round_cancel", args=[project.slug, queued.pk]))
    assert response.status_code == 302
    queued.refresh_from_db()
    assert queued.status == "cancelled" and queued.finished_at


def test_learning_curve_is_server_side_svg_one_line_per_algorithm(client_for, project, finished):
    """Issue 14: one chart per evaluation set, one line per algorithm (both rounds: MultiMatch)."""
    _round(
        project,
        algorithm="supervised",
        n_labeled=20,
        metrics={"test": {"f1": 0.6, "precision": 0.6, "recall": 0.6, "auprc": 0.6, "n": 8}},
    )
    response = client_for("admin").get(reverse("annotations:round_list", args=[project.slug]))
    assert response.status_code == 200
    html = response.content.decode()
    test_chart = html.split('data-eval-set="test"', 1)[1].split("</svg>", 1)[0]
    bench_chart = html.split('data-eval-set="bench:xs"', 1)[1].split("</svg>", 1)[0]
    assert re.findall(r'data-series="([^"]+)" data-points="(\d+)"', test_chart) == [
        ("Supervised (baseline)", "1"),
        ("MultiMatch", "2"),
    ]
    assert re.findall(r'data-series="([^"]+)" data-points="(\d+)"', bench_chart) == [("MultiMatch", "1")]
    assert "human labels used" in test_chart and "F1 on test" in test_chart
    assert not re.search(r"\sstyle=", html) and "<script>" not in html


def test_error_text_is_escaped(client_for, project):
    _round(project, status="failed", error='<img src=x onerror="alert(1)">', metrics={})
    html = client_for("admin").get(reverse("annotations:round_list", args=[project.slug])).content.decode()
    assert "<img src=x" not in html and "&lt;img src=x" in html


def test_rounds_page_query_count(client_for, project, finished, django_assert_max_num_queries):
    for i in range(8):
        _round(project, n_labeled=40 + i)
    client = client_for("admin")
    with django_assert_max_num_queries(12):
        response = client.get(reverse("annotations:round_list", args=[project.slug]))
    assert response.status_code == 200


def _pl(epoch, label, drawn, used, checked, correct):
    return {
        "epoch": epoch,
        "label": label,
        "drawn": drawn,
        "used": used,
        "mean_weight": 1.0,
        "checked": checked,
        "correct": correct,
    }


def test_round_page_shows_pseudo_label_quality_per_class(client_for, project):
    """Issue 13: per class, pseudo-labels used and their precision; a round that learns from its own
    mistakes (harmful precision 15 % on checked items, below the 30 % labeled share) is flagged."""
    training_round = _round(
        project,
        snapshot={"label_counts": {"harmful": 30, "unharmful": 70}},
        threshold_strategy="prior_match",
        threshold_note="share of harmful matched to 0.30",
        pseudo_labels=[
            _pl(1, "unharmful", 300, 200, 40, 36),
            _pl(1, "harmful", 100, 60, 20, 6),
            _pl(2, "unharmful", 310, 250, 50, 45),
            _pl(2, "harmful", 90, 80, 20, 3),
        ],
    )
    response = client_for("reviewer").get(reverse("annotations:round_detail", args=[project.slug, training_round.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    panel = html.split('id="pseudo-labels"', 1)[1].split("</section>", 1)[0]
    harmful = panel.split('class="pseudo-harmful flagged"', 1)[1].split("</tr>", 1)[0]
    unharmful = panel.split('class="pseudo-unharmful"', 1)[1].split("</tr>", 1)[0]
    assert '80 <span class="muted">of 90</span>' in harmful  # used in the last epoch
    assert "22 %" in harmful and "(9 of 40)" in harmful  # 9 right of 40 checked over both epochs
    assert "30 %" in harmful  # share of harmful among human labels
    assert '250 <span class="muted">of 310</span>' in unharmful and "(81 of 90)" in unharmful
    assert "This round may be learning from its own mistakes." in panel
    assert "no better than the 30 % share" not in panel  # the flag speaks in its own words (0%, not "30 %")
    assert "no better than the 30% share of harmful" in panel
    assert "fell from 30% (epoch 1) to 15% (epoch 2)" in panel
    assert "prior match" in html and "share of harmful matched to 0.30" in html


def test_pseudo_label_precision_counts_labels_given_after_the_round(client_for, project):
    from annotations.models import Item, Prediction

    training_round = _round(
        project,
        snapshot={"label_counts": {"harmful": 5, "unharmful": 5}},
        pseudo_labels=[_pl(1, "harmful", 3, 3, 0, 0), _pl(1, "unharmful", 2, 1, 0, 0)],
    )
    for i, (pseudo, human, used) in enumerate(
        [
            ("harmful", "harmful", True),
            ("harmful", "unharmful", True),
            ("harmful", "", True),
            ("unharmful", "harmful", False),
        ]
    ):
        item = Item.objects.create(project=project, text=f"t{i}", content_hash=f"h{i}", split="pool", human_label=human)
        Prediction.objects.create(
            item=item, training_round=training_round, p_harmful=0.9, pseudo_label=pseudo, used=used
        )
    response = client_for("annotator").get(reverse("annotations:round_detail", args=[project.slug, training_round.pk]))
    assert response.status_code == 200
    panel = response.content.decode().split('id="pseudo-labels"', 1)[1]
    harmful = panel.split('class="pseudo-harmful', 1)[1].split("</tr>", 1)[0]
    unharmful = panel.split('class="pseudo-unharmful', 1)[1].split("</tr>", 1)[0]
    assert "50 %" in harmful and "(1 of 2)" in harmful and "none checked" in harmful
    assert "none reviewed yet" in unharmful  # its only reviewed item was not used in training


def test_round_page_draws_training_curves_pr_curves_and_confusion(client_for, project):
    metrics = {
        "test": {
            "f1": 0.5,
            "precision": 0.4,
            "recall": 0.75,
            "auprc": 0.6,
            "n": 8,
            "threshold": 0.42,
            "confusion": {"tp": 3, "fp": 4, "fn": 1, "tn": 0},
            "pr_curve": {"precision": [0.5, 0.4, 1.0], "recall": [1.0, 0.75, 0.25], "thresholds": [0.1, 0.42, 0.9]},
        }
    }
    log = [
        {"step": s, "loss": 1 / s, "supervised_loss": 0.5 / s, "unsupervised_loss": 0.5 / s, "mask_ratio": s / 10}
        for s in range(1, 9)
    ]
    training_round = _round(project, metrics=metrics, train_log=log)
    response = client_for("annotator").get(reverse("annotations:round_detail", args=[project.slug, training_round.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    charts_html = html.split('id="training-charts"', 1)[1].split("</section>", 1)[0]
    assert re.findall(r'data-series="([^"]+)" data-points="(\d+)"', charts_html) == [
        ("total loss", "8"),
        ("supervised", "8"),
        ("unsupervised", "8"),
        ("mask ratio", "8"),
    ]
    assert "<details" in charts_html and "Raw train log (8 rows)" in charts_html  # the table stays behind a toggle
    pr = html.split('data-chart="pr"', 1)[1].split("</svg>", 1)[0]
    assert 'data-points="3"' in pr and "threshold 0.420: P 0.40, R 0.75" in pr
    assert re.search(r'data-cell="fp">4<', html) and re.search(r'data-cell="tp">3<', html)


def test_running_round_charts_its_live_curve(client_for, project):
    curve = [
        {"step": s, "loss": 0.7, "supervised_loss": 0.6, "unsupervised_loss": 0.1, "mask_ratio": 0.3} for s in (1, 2, 3)
    ]
    running = TrainingRound.objects.create(
        project=project,
        algorithm="fixmatch",
        status="running",
        progress={"phase": "train", "step": 3, "total": 10, "curve": curve},
    )
    response = client_for("admin").get(
        reverse("annotations:round_detail", args=[project.slug, running.pk]), HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200  # still polling
    assert re.search(r'data-series="total loss" data-points="3"', response.content.decode())


def test_rounds_page_charts_the_pseudo_label_mix_per_round(client_for, project):
    _round(project, number=1, pseudo_labels=[_pl(1, "harmful", 10, 9, 0, 0), _pl(1, "unharmful", 30, 27, 0, 0)])
    _round(project, number=2, algorithm="supervised")  # no pseudo-labels: no bar
    response = client_for("reviewer").get(reverse("annotations:round_list", args=[project.slug]))
    assert response.status_code == 200
    mix = response.content.decode().split('id="pseudo-mix"', 1)[1].split("</svg>", 1)[0]
    assert re.findall(r'data-group="([^"]+)"', mix) == ["#1"]
    assert "#1 · harmful: 9 (25%)" in mix and "#1 · unharmful: 27 (75%)" in mix


def test_round_form_is_generated_from_the_engine_schema(client_for, project):
    from ssl_engine.configs import config_schema

    response = client_for("admin").get(reverse("annotations:round_list", args=[project.slug]))
    assert response.status_code == 200
    form = response.content.decode().split('id="round-start-form"', 1)[1].split("</form>", 1)[0]
    # typed fields with the engine's ranges, its groups, advanced ones folded in <details>
    assert re.search(r'<input type="number" name="epochs" value="3"[^>]*min="1"[^>]*max="1000"', form)
    for group in {s.group for s in config_schema("multimatch")}:
        assert f"<legend>{group}</legend>" in form
    advanced = form.split("Advanced training settings", 1)[1].split("</details>", 1)[0]
    assert 'name="weight_decay"' in advanced and 'name="epochs"' not in advanced
    # an algorithm's own settings carry its name and show only while it is chosen
    assert re.search(r'name="fixmatch__threshold"[^>]*data-show-if="algorithm=fixmatch"', form)
    assert "Learning rate" in form and "API key" not in form  # machine names shown as words
    assert '<option value="fixmatch" selected>FixMatch</option>' in form  # the engine's DEFAULT_ALGORITHM


def test_round_form_help_example_is_accepted(
    client_for, project, round_items_light, django_capture_on_commit_callbacks
):
    """Issue 14.4: the help text's own JSON example was rejected as unknown."""
    from annotations.forms.rounds import CONFIG_HELP

    example = re.search(r"e\.g\. (\{.*?\})\.", CONFIG_HELP).group(1)
    with django_capture_on_commit_callbacks(execute=False):
        response = client_for("admin").post(
            reverse("annotations:round_start", args=[project.slug]),
            {"algorithm": "multimatch", "config": example, "seed": "0"},
        )
    assert response.status_code == 302
    assert TrainingRound.objects.get().config["fixed_threshold"] == 0.9


def test_typed_fields_become_the_round_config_and_errors_sit_next_to_their_field(
    client_for, project, round_items_light, django_capture_on_commit_callbacks
):
    from annotations.forms.rounds import RoundStartForm

    data = {
        k: ("on" if v is True else "" if v is False else v)
        for k, v in {f.html_name: f.initial for f in RoundStartForm()}.items()
        if v is not None
    }
    data.update(
        {
            "algorithm": "fixmatch",
            "epochs": "2",
            "fixmatch__threshold": "0.8",
            "typed": "on",
            "multimatch__n_heads": "4",
        }
    )  # another algorithm's field is ignored
    client = client_for("admin")
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(reverse("annotations:round_start", args=[project.slug]), data)
    assert response.status_code == 302
    config = TrainingRound.objects.get().config
    assert (config["epochs"], config["threshold"], config["bf16"]) == (2, 0.8, True) and "n_heads" not in config

    TrainingRound.objects.all().delete()
    bad = client.post(
        reverse("annotations:round_start", args=[project.slug]), {**data, "epochs": "0"}, HTTP_HX_REQUEST="true"
    )
    html = bad.content.decode()
    assert bad.status_code == 422
    epochs = html.split('name="epochs"', 1)[1].split('<div class="field', 1)[0]
    assert html.count("greater than or equal to 1") == 1 and "greater than or equal to 1" in epochs


def _version(project, *, label_counts, metrics, number):
    rnd = _round(project, number=number, snapshot={"label_counts": label_counts}, metrics=metrics)
    from annotations.services.rounds import model_version_create

    return model_version_create(training_round=rnd, path=f"/m/{number}", threshold=0.5, metrics=metrics)


EVALUATED = {"test": {"f1": 0.5, "precision": 0.5, "recall": 0.5, "auprc": 0.5, "n": 40}}


@pytest.mark.parametrize(
    ("label_counts", "metrics", "reason"),
    [
        ({"harmful": 30, "unharmful": 30}, {}, "it was not evaluated"),
        (
            {"harmful": 6, "unharmful": 6},
            EVALUATED,
            "trained on 6 harmful and 6 unharmful human labels, under this project's minimum of 20 of each",
        ),
    ],
)
def test_a_model_without_evaluation_or_under_the_minimum_is_not_auto_activated(
    project, users, label_counts, metrics, reason
):
    """Issue 14.11: a 12-label model without an evaluation set was activated and served at once."""
    Project = type(project)
    Project.objects.filter(pk=project.pk).update(min_labels_per_class=20)
    project.refresh_from_db()
    version = _version(project, label_counts=label_counts, metrics=metrics, number=1)
    assert not version.is_active and not ModelVersion.objects.filter(is_active=True).exists()

    from annotations.errors import Conflict
    from annotations.services.rounds import model_version_activate

    with pytest.raises(Conflict, match=reason) as refused:
        model_version_activate(model_version=version, user=users["admin"])
    assert refused.value.code == "needs_confirmation"
    model_version_activate(model_version=version, user=users["admin"], confirm=True)
    assert ModelVersion.objects.get(is_active=True).pk == version.pk


def test_an_evaluated_model_with_enough_labels_goes_live_by_itself(project):
    type(project).objects.filter(pk=project.pk).update(min_labels_per_class=20)
    project.refresh_from_db()
    assert _version(project, label_counts={"harmful": 20, "unharmful": 25}, metrics=EVALUATED, number=1).is_active


def test_rounds_page_asks_to_confirm_with_the_reason(client_for, project, users):
    type(project).objects.filter(pk=project.pk).update(min_labels_per_class=20)
    project.refresh_from_db()
    version = _version(project, label_counts={"harmful": 6, "unharmful": 6}, metrics={}, number=1)
    client = client_for("admin")
    html = client.get(reverse("annotations:round_list", args=[project.slug])).content.decode()
    row = html.split(f'action="/p/{project.slug}/models/{version.pk}/activate/"', 1)
    assert "Not activated automatically: it was not evaluated" in row[0]
    form = row[1].split("</form>", 1)[0]
    assert 'data-confirm="Serve safety-v1 and use it for the review queue? Careful: it was not evaluated' in form
    assert 'name="confirm" value="1"' in form and "Activate anyway</button>" in form
    url = reverse("annotations:model_version_activate", args=[project.slug, version.pk])
    refused = client.post(url, follow=True)  # without the confirmation the service refuses
    assert "safety-v1 was not activated: it was not evaluated" in refused.content.decode()
    assert not ModelVersion.objects.get(pk=version.pk).is_active
    assert client.post(url, {"confirm": "1"}).status_code == 302
    assert ModelVersion.objects.get(pk=version.pk).is_active


def test_api_activation_needs_confirm_for_a_guarded_model(project, users):
    from rest_framework.test import APIClient

    type(project).objects.filter(pk=project.pk).update(min_labels_per_class=20)
    project.refresh_from_db()
    version = _version(project, label_counts={"harmful": 6, "unharmful": 6}, metrics=EVALUATED, number=1)
    client = APIClient()
    client.force_authenticate(users["admin"])
    url = reverse("annotations-api:model-version-activate", args=[project.slug, version.pk])
    refused = client.post(url, {}, format="json")
    assert refused.status_code == 409 and refused.json()["code"] == "needs_confirmation"
    assert client.post(url, {"confirm": True}, format="json").status_code == 200


def test_rounds_list_flags_a_round_learning_from_its_own_mistakes(client_for, project):
    bad = _round(
        project,
        number=1,
        snapshot={"label_counts": {"harmful": 30, "unharmful": 70}},
        pseudo_labels=[_pl(1, "harmful", 100, 60, 20, 3), _pl(1, "unharmful", 300, 200, 40, 36)],
    )
    good = _round(
        project,
        number=2,
        snapshot={"label_counts": {"harmful": 30, "unharmful": 70}},
        pseudo_labels=[_pl(1, "harmful", 100, 60, 20, 16), _pl(1, "unharmful", 300, 200, 40, 36)],
    )
    response = client_for("reviewer").get(reverse("annotations:round_list", args=[project.slug]))
    assert response.status_code == 200
    html = response.content.decode()
    row = {r.pk: html.split(f'id="round-{r.pk}"', 1)[1].split("</tr>", 1)[0] for r in (bad, good)}
    assert "pseudo-labels look wrong" in row[bad.pk] and f"/rounds/{bad.pk}/#pseudo-labels" in row[bad.pk]
    assert "pseudo-labels look wrong" not in row[good.pk]
