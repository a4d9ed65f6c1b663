import pytest

from contracts.errors import BoxflowError
from contracts.label_map import format_label_map, parse_label_map


def test_round_trip_with_quotes_and_spaces():
    names = ["traffic light", "o'clock", "cat"]
    assert parse_label_map(format_label_map(names)) == names


def test_reads_tf_od_api_style_with_comments_and_display_names():
    text = """# a comment
    item { name: "raccoon" id: 1 }
    item {
      id: 2
      display_name: 'dog'
    }"""
    assert parse_label_map(text) == ["raccoon", "dog"]


@pytest.mark.parametrize("text, message", [
    ("item { id: 1 name: 'a' } item { id: 3 name: 'b' }", "ids must be 1..2"),
    ("item { id: 1 name: 'a' } item { id: 1 name: 'b' }", "appears twice"),
    ("item { id: 1 }", "needs an integer 'id' and a string 'name'"),
    ("item { id: 1 name: 'a' ", "unterminated"),
    ("", "no items"),
])
def test_bad_label_maps_name_the_file_and_problem(text, message):
    with pytest.raises(BoxflowError, match=message) as error:
        parse_label_map(text, source="my_map.pbtxt")
    assert "my_map.pbtxt" in str(error.value)
