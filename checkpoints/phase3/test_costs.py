"""Checkpoint 3.11: cost per 1,000 requests for a measured generation speed.

Grades `rag_service.costs.cost_per_1k_requests(hourly_price, tokens_per_s, tokens_per_request,
utilization=1.0)`: an instance generating `tokens_per_s` completes tokens_per_s /
tokens_per_request requests a second; run at `utilization` it serves that times utilization
times 3,600 requests an hour; its hourly price over those requests, times 1,000, is the answer.
Prices are made-up round numbers chosen so the arithmetic can be done by hand.
"""

from __future__ import annotations

import pytest

from learn.testing import import_learner


@pytest.fixture
def costs():
    return import_learner("rag_service.costs")


@pytest.mark.checkpoint("3.11")
def test_by_hand(costs):
    """$0.36/h, 100 tokens/s, 250-token answers: 0.4 req/s, 1,440 an hour, $0.25 per 1,000."""
    assert costs.cost_per_1k_requests(0.36, 100, 250, 1.0) == pytest.approx(0.25)


@pytest.mark.checkpoint("3.11")
def test_default_utilization_is_full(costs):
    """$1/h, 20 tokens/s, 100 tokens: 720 answers an hour flat out, $1.3889 per 1,000."""
    assert costs.cost_per_1k_requests(1.0, 20, 100) == pytest.approx(1000 / 720)


@pytest.mark.checkpoint("3.11")
def test_utilization_divides(costs):
    """The same instance at 50 % serves 360 an hour: twice the cost per request."""
    assert costs.cost_per_1k_requests(1.0, 20, 100, 0.5) == pytest.approx(1000 / 360)
    assert costs.cost_per_1k_requests(0.9, 50, 300, 0.3) == pytest.approx(
        2 * costs.cost_per_1k_requests(0.9, 50, 300, 0.6)
    )


@pytest.mark.checkpoint("3.11")
def test_longer_answers_and_faster_models(costs):
    """Doubling the answer's tokens doubles the cost; doubling tokens/s halves it."""
    base = costs.cost_per_1k_requests(2.5, 400, 200, 0.6)  # 2 req/s * 0.6 * 3600 = 4,320/h
    assert base == pytest.approx(2.5 / 4320 * 1000)
    assert costs.cost_per_1k_requests(2.5, 400, 400, 0.6) == pytest.approx(2 * base)
    assert costs.cost_per_1k_requests(2.5, 800, 200, 0.6) == pytest.approx(base / 2)


@pytest.mark.checkpoint("3.11")
def test_a_small_model_on_a_cpu(costs):
    """$0.10/h, 40 tokens/s, 150 tokens, 60 %: 576 answers an hour, $0.1736 per 1,000."""
    assert costs.cost_per_1k_requests(0.10, 40, 150, 0.6) == pytest.approx(0.1 / 576 * 1000)


@pytest.mark.checkpoint("3.11")
def test_free_hardware_costs_nothing(costs):
    """A price of 0 (hardware already paid for) gives 0, as a float."""
    result = costs.cost_per_1k_requests(0.0, 40, 150, 0.6)
    assert result == 0 and isinstance(result, float)
