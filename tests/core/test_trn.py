import pytest
from hypothesis import given
from hypothesis import strategies as st

from aionix import trn
from aionix.errors import TRNError

ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
names = st.builds(lambda a, b: a + b, st.sampled_from(ALNUM), st.text(ALNUM + "_.-", max_size=20))
tenants = st.builds(
    lambda a, b: a + b,
    st.sampled_from("abcdefghijklmnopqrstuvwxyz0123456789"),
    st.text("abcdefghijklmnopqrstuvwxyz0123456789-", max_size=20),
)


@st.composite
def valid_trns(draw):
    service = draw(st.sampled_from(sorted(trn.SERVICES)))
    rtype = draw(st.sampled_from(sorted(trn.SERVICES[service])))
    segments = draw(st.lists(names, min_size=1, max_size=4 if rtype in trn.MULTI_SEGMENT else 1))
    text = f"trn:{service}:{draw(tenants)}:{rtype}/{'/'.join(segments)}"
    if rtype in trn.QUALIFIED and draw(st.booleans()):
        text += ":" + draw(names)[:64]
    return text


@given(valid_trns())
def test_format_of_parse_is_identity(text):
    assert str(trn.parse(text)) == text


@given(st.text(max_size=60))
def test_any_string_parses_or_raises_the_one_documented_error(text):
    try:
        parsed = trn.parse(text)
    except TRNError as exc:
        assert isinstance(exc.details["position"], int)
        assert 0 <= exc.details["position"] <= len(text)
    else:
        assert str(parsed) == text


@given(valid_trns(), st.integers(min_value=0), st.sampled_from([" ", "!", "#", "é", "\n", "*"]))
def test_a_bad_character_is_reported_at_its_position(text, where, bad):
    i = 4 + where % (len(text) - 4)
    mutated = text[:i] + bad + text[i + 1 :]
    with pytest.raises(TRNError) as info:
        trn.parse(mutated)
    assert info.value.details["position"] <= i + 1


@pytest.mark.parametrize(
    ("text", "position", "reason"),
    [
        ("arn:stepflow:prod:template/a", 0, "must start with 'trn:'"),
        ("trn:nope:prod:template/a", 4, "unknown service"),
        ("trn:stepflow:Prod:template/a", 13, "bad character 'P' in tenant"),
        ("trn:stepflow:prod:function/a", 18, "unknown type"),
        ("trn:stepflow:prod:template/a b", 28, "bad character ' '"),
        ("trn:igniter:prod:trigger/a:v1", 26, "takes no qualifier"),
        ("trn:aionixfn:prod:function/a/b", 28, "has no '/'"),
        ("trn:stepflow:prod:template/", 27, "is empty"),
        ("trn:stepflow:prod:template/" + "a" * 129, 27 + 128, "longer than 128"),
    ],
)
def test_malformed_trn_names_position_and_reason(text, position, reason):
    with pytest.raises(TRNError) as info:
        trn.parse(text)
    assert info.value.details["position"] == position
    assert reason in info.value.message
    assert info.value.status == 400


def test_resolve_accepts_short_names_and_full_trns_in_the_tenant():
    assert (
        str(trn.resolve("order-flow", tenant="prod", service="stepflow", type="template"))
        == "trn:stepflow:prod:template/order-flow"
    )
    assert trn.resolve("pay:live", tenant="prod", service="aionixfn", type="function").qualifier == "live"
    assert trn.resolve("/app/db/host", tenant="prod", service="paramstore", type="param").path == "app/db/host"
    full = "trn:aionixfn:prod:function/pay:3"
    assert str(trn.resolve(full, tenant="prod", service="aionixfn", type="function")) == full


def test_resolve_refuses_other_tenants_and_other_services():
    with pytest.raises(TRNError, match="not yours"):
        trn.resolve("trn:stepflow:other:template/x", tenant="prod", service="stepflow", type="template")
    with pytest.raises(TRNError, match="expected a trn:aionixfn"):
        trn.resolve("trn:stepflow:prod:template/x", tenant="prod", service="aionixfn", type="function")
