"""Search spaces: validation, plain-data forms, conditions and grids (no Ray started)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tuning_service.core import yamlio
from tuning_service.core.errors import InputError
from tuning_service.core.space import Choice, Fixed, Float, Int, Space


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"a": Choice(())}, r"parameter 'a': a choice needs at least one value, got \[\]"),
        ({"a": Int(5, 1)}, r"parameter 'a': low must be <= high, got low=5, high=1"),
        ({"lr": Float(0.0, 1.0, log=True)}, r"parameter 'lr': a log range needs low > 0, got low=0.0"),
        ({"u": Int(1, 10, step=2)}, r"low and high must be multiples of step"),
        (
            {"d": Float(0.05, 0.5, step=0.1)},
            r"parameter 'd': low and high must be multiples of step, got low=0.05, high=0.5, step=0.1",
        ),
        ({"u": Int(2, 10, step=2, log=True)}, r"cannot have both step and log"),
        ({"u": Int(1, 5, grid=(0, 1))}, r"grid values \[0\] lie outside the range"),
        ({"u": Int(1.5, 5)}, r"low must be an integer, got 1.5"),
        ({"a": Choice((1, 1))}, r"choice values repeat"),
        (
            {"m": Float(0, 1, when={"opt": ("sgd",)})},
            r"'when' names 'opt', which must be a parameter defined before it",
        ),
        (
            {"opt": Choice(("sgd",)), "m": Float(0, 1, when={"opt": ("adam",)})},
            r"'when' values \['adam'\] are not values of 'opt'",
        ),
    ],
)
def test_bad_spaces_are_refused_with_the_reason(params, message):
    with pytest.raises(InputError, match=message):
        Space(params)


def test_plain_data_forms_mean_the_same_as_python_objects():
    space = Space.from_dict(
        yamlio.loads(
            """
            lr: {type: float, low: 1e-4, high: 1e-1, log: true}
            units: {type: int, low: 32, high: 512, step: 32}
            activation: [relu, tanh]
            epochs: 10
            optimizer: {type: choice, values: [adam, sgd]}
            momentum: {type: float, low: 0.0, high: 0.9, when: {optimizer: sgd}}
            """
        )
    )
    assert space["lr"] == Float(1e-4, 1e-1, log=True)
    assert space["units"] == Int(32, 512, step=32)
    assert space["activation"] == Choice(("relu", "tanh"))
    assert space["epochs"] == Fixed(10)
    assert space["momentum"].when == {"optimizer": ("sgd",)}
    assert Space.from_dict(space.to_dict()).to_dict() == space.to_dict()


def test_yaml_reads_numbers_booleans_and_times_like_yaml_1_2():
    data = yamlio.loads("a: 1e-3\nb: no\nc: 12:30\nd: [1e-2, 1e-4]\ne: true\nf: 3")
    assert data == {"a": 0.001, "b": "no", "c": "12:30", "d": [0.01, 0.0001], "e": True, "f": 3}


def test_numbers_written_as_strings_are_accepted():
    space = Space.from_dict({"lr": {"type": "float", "low": "1e-4", "high": "0.1", "log": True}})
    assert space["lr"] == Float(1e-4, 0.1, log=True)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"x": {"type": "uniform", "low": 0, "high": 1}},
            r"unknown type 'uniform' \(accepted: choice, fixed, int, float\)",
        ),
        ({"x": {"type": "int", "low": 0, "high": 4, "q": 2}}, r"unknown key 'q' for type int"),
        ({"x": {"type": "float", "low": "abc", "high": 1}}, r"low must be a number, got 'abc'"),
        ({"x": {"type": "int", "high": 3}}, r"int range needs a number for low"),
        ([1, 2], r"expected a mapping of parameter names"),
    ],
)
def test_bad_plain_data_is_refused(data, message):
    with pytest.raises(InputError, match=message):
        Space.from_dict(data)


def test_conditional_parameters_drop_out_of_the_effective_config():
    space = Space(
        {
            "optimizer": Choice(("adam", "sgd")),
            "momentum": Float(0.0, 0.9, when={"optimizer": ("sgd",)}),
            "nesterov": Choice((True, False), when={"optimizer": ("sgd",)}),
        }
    )
    assert space.effective({"optimizer": "adam", "momentum": 0.5, "nesterov": True}) == {"optimizer": "adam"}
    assert space.effective({"optimizer": "sgd", "momentum": 0.5, "nesterov": True, "extra": 1}) == {
        "optimizer": "sgd",
        "momentum": 0.5,
        "nesterov": True,
        "extra": 1,
    }


def test_grid_expands_conditional_values_once():
    space = Space(
        {
            "optimizer": Choice(("adam", "sgd")),
            "momentum": Float(0.0, 0.9, grid=(0.0, 0.9), when={"optimizer": ("sgd",)}),
            "layers": Int(1, 2),
        }
    )
    points = space.grid_points()
    assert len(points) == 2 + 4  # adam x 2 layers, sgd x 2 momenta x 2 layers
    assert {"optimizer": "adam", "layers": 1} in points
    assert len({tuple(sorted(p.items())) for p in points}) == len(points)


def test_grid_refuses_a_continuous_range_without_values():
    with pytest.raises(
        InputError,
        match=r"^searcher 'grid' cannot enumerate the continuous range 'lr'; give grid values, use a choice, "
        r"or pass --searcher-option points=N to spread N values over it$",
    ):
        Space({"lr": Float(1e-4, 1e-1, log=True)}).grid_points()
    with pytest.raises(InputError, match=r"will not enumerate 100001 values of 'n'; .* points=N"):
        Space({"n": Int(0, 100_000)}).grid_points()


@pytest.mark.parametrize(
    ("param", "points", "values"),
    [
        (Float(1e-4, 1e-2, log=True), 3, [1e-4, 1e-3, 1e-2]),  # log-spaced
        (Float(1e-4, 3e-2, log=True), 4, [1e-4, 6.69e-4, 4.48e-3, 3e-2]),  # 3 significant digits
        (Float(0.0, 1.0), 5, [0.0, 0.25, 0.5, 0.75, 1.0]),
        (Float(0.0, 0.5, step=0.1), 4, [0.0, 0.2, 0.3, 0.5]),  # onto the steps
        (Float(1e-4, 1e-2, log=True), 1, [1e-3]),  # one point: the (geometric) middle
        (Int(16, 256, log=True), 5, [16, 32, 64, 128, 256]),
        (Int(1, 3), 10, [1, 2, 3]),  # fewer values than points: all of them
        (Int(32, 512, step=32), 4, [32, 192, 352, 512]),
        (Int(1, 4, log=True), 4, [1, 2, 3, 4]),
        (Float(1e-4, 1e-1, log=True, grid=(1e-2,)), 5, [1e-2]),  # a range's own grid values win
    ],
)
def test_grid_points_spread_over_a_range(param, points, values):
    assert param.grid_values("p", points) == pytest.approx(values)


@settings(max_examples=300, deadline=None)
@given(
    low=st.floats(1e-9, 1e3, allow_nan=False),
    span=st.floats(0.0, 1e6, allow_nan=False),
    log=st.booleans(),
    points=st.integers(1, 60),
)
def test_grid_points_of_a_float_range_are_distinct_sorted_inside_and_span_it(low, span, log, points):
    param = Float(low, low + span, log=log)
    param.check("x")
    values = param.grid_values("x", points)
    assert values == sorted(set(values)) and 1 <= len(values) <= points
    assert all(param.contains(v) for v in values)
    if points >= 2:
        assert values[0] == param.low and values[-1] == param.high


@settings(max_examples=300, deadline=None)
@given(
    low=st.integers(1, 10_000),
    count=st.integers(0, 5_000),
    step=st.sampled_from([None, 2, 5]),
    log=st.booleans(),
    points=st.integers(1, 60),
)
def test_grid_points_of_an_int_range_are_rounded_distinct_and_on_its_steps(low, count, step, log, points):
    if step:
        low, log = low * step, False  # a stepped range sits on multiples of its step, and is not log
    param = Int(low, low + count * (step or 1), step=step, log=log)
    param.check("n")
    values = param.grid_values("n", points)
    assert all(isinstance(v, int) and param.contains(v) for v in values)
    assert values == sorted(set(values)) and 1 <= len(values) <= points
    if points >= 2:
        assert values[0] == param.low and values[-1] == param.high
    if count + 1 <= points:
        assert values == list(range(param.low, param.high + 1, step or 1))


def test_points_spread_over_every_range_of_a_space_but_not_its_choices():
    space = Space(
        {"lr": Float(1e-4, 1e-1, log=True), "units": Int(8, 512, log=True), "act": Choice(("a", "b", "c"))}
    )
    assert len(space.grid_points(points=4)) == 4 * 4 * 3


def test_conditions_hold_whatever_order_the_searcher_returns_keys_in():
    space = Space(
        {"optimizer": Choice(("adam", "sgd")), "momentum": Float(0.0, 0.9, when={"optimizer": ("sgd",)})}
    )
    # HyperOpt hands configs back with sorted keys: momentum before optimizer.
    assert space.effective({"momentum": 0.5, "optimizer": "sgd"}) == {"optimizer": "sgd", "momentum": 0.5}
    assert space.effective({"momentum": 0.5, "optimizer": "adam"}) == {"optimizer": "adam"}


def test_yaml_node_trees_keep_line_numbers_and_1_2_scalars():
    node = yamlio.compose("a: 1e-3\nb: no\n")
    assert node.value[1][0].start_mark.line == 1
    assert yamlio.construct(node) == {"a": 0.001, "b": "no"}


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(
        st.builds(
            lambda low, span, log, q: Float(low, low + span, log=log, step=None if log else q),
            st.floats(1e-4, 100),
            st.floats(0, 1000),
            st.booleans(),
            st.sampled_from([None, 0.5, 2.0]),
        ),
        st.builds(
            lambda low, count, step, log: Int(
                low * step, (low + count) * step, step=1 if log else step, log=log
            ),
            st.integers(1, 50),
            st.integers(0, 100),
            st.integers(1, 4),
            st.booleans(),
        ),
        st.builds(
            lambda v: Choice(tuple(v)), st.lists(st.integers() | st.text(max_size=3), min_size=1, unique=True)
        ),
    )
)
def test_optuna_distributions_are_what_rays_conversion_gives(param):
    """Importance (report, dashboard) converts without importing Ray, to the same distributions."""
    from ray.tune.search.optuna import OptunaSearch

    try:
        param.check("p")
    except InputError:
        return
    (rays,) = OptunaSearch.convert_search_space({"p": param.to_ray()}).values()
    assert param.to_optuna() == rays


def test_a_fixed_parameter_has_no_distribution():
    assert Fixed(3).to_optuna() is None
