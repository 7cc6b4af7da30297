from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from mlp_serve.payload import BadRequest, parse_v1, parse_v2, v1_response

FEATURES = ("a", "b")


@dataclass
class Tensor:
    """A stand-in with the four members of KServe's InferInput that parse_v2 uses."""

    data: list[Any]
    shape: list[Any] = field(default_factory=lambda: [1, 2])
    datatype: str = "FP32"
    name: str = "x"

    def as_numpy(self) -> np.ndarray:
        return np.array(self.data, dtype=np.float64).reshape(self.shape)


def test_v1_rows_as_lists_or_objects() -> None:
    lists = parse_v1({"instances": [[1, 2], [3, 4]]}, FEATURES)
    objects = parse_v1({"instances": [{"b": 2, "a": 1}, {"a": 3, "b": 4}]}, FEATURES)
    assert lists.dtype == np.float32
    np.testing.assert_array_equal(lists, [[1, 2], [3, 4]])
    np.testing.assert_array_equal(objects, lists)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ([1, 2], "body must be a JSON object"),
        ({"instances": "x"}, '"instances" must be a list'),
        ({"instances": []}, "instances: no rows"),
        ({"instances": [1, 2]}, "instances[0]: each row must be a list of 2 numbers"),
        ({"instances": [[1, 2], [3]]}, "instances[1]: 1 values, expected 2"),
        ({"instances": [{"a": 1}]}, "instances[0]: missing features: b"),
        ({"instances": [{"a": 1, "b": 2}, [1, 2]]}, "instances[1]: mix of objects and lists"),
        ({"instances": [[1, "x"]]}, "instances[0][1]: a string is not a number"),
        ({"instances": [[1, 2], [1, "2"]]}, "instances[1][1]: a string is not a number"),
        ({"instances": [[True, 2]]}, "instances[0][0]: a boolean is not a number"),
        ({"instances": [[1, None]]}, "instances[0][1]: null is not a number"),
        ({"instances": [[1, [2]]]}, "instances[0][1]: an array is not a number"),
        ({"instances": [{"a": 1, "b": False}]}, "instances[0].b: a boolean is not a number"),
        ({"instances": [{"a": "1", "b": 2}]}, "instances[0].a: a string is not a number"),
        ({"instances": [[1, float("nan")]]}, "finite numbers"),
    ],
)
def test_v1_rejects_with_a_message_naming_the_place(payload: object, message: str) -> None:
    with pytest.raises(BadRequest, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_v1(payload, FEATURES)


def test_v2_single_numeric_tensor() -> None:
    matrix = parse_v2([Tensor([1, 2, 3, 4], shape=[2, 2], datatype="INT64")], 2)
    np.testing.assert_array_equal(matrix, [[1, 2], [3, 4]])
    with pytest.raises(BadRequest, match="exactly 1 input tensor, got 2"):
        parse_v2([Tensor([1, 2]), Tensor([1, 2])], 2)
    with pytest.raises(BadRequest, match="input 'x': datatype BYTES is not numeric"):
        parse_v2([Tensor([1, 2], datatype="BYTES")], 2)
    with pytest.raises(BadRequest, match=r"input 'x': data does not match shape \[1, 2\]"):
        parse_v2([Tensor([1, 2, 3])], 2)
    with pytest.raises(BadRequest, match=r"expected shape \[rows, 3\], got \[1, 2\]"):
        parse_v2([Tensor([1, 2])], 3)


@pytest.mark.parametrize(
    ("tensor", "message"),
    [
        (
            Tensor([1, 2], shape=[-1, 2]),
            "shape must be a list of non-negative integers, got [-1, 2]",
        ),
        (Tensor([1, 2], shape=["1", "2"]), "shape must be a list of non-negative integers"),
        (Tensor([1, 2], shape=[True, 2]), "shape must be a list of non-negative integers"),
        (Tensor(["1", 2]), "data holds a string, not a number"),
        (Tensor([True, 2]), "data holds a boolean, not a number"),
        (Tensor([[1, None]]), "data holds null, not a number"),
    ],
)
def test_v2_rejects_shapes_and_values_numpy_would_coerce(tensor: Tensor, message: str) -> None:
    with pytest.raises(BadRequest, match=re.escape(f"input 'x': {message}")):
        parse_v2([tensor], 2)


def test_v2_data_may_be_nested_as_the_protocol_allows() -> None:
    matrix = parse_v2([Tensor([[1, 2], [3, 4]], shape=[2, 2])], 2)
    np.testing.assert_array_equal(matrix, [[1, 2], [3, 4]])


def test_v1_response_labels_by_highest_probability() -> None:
    probabilities = np.array([[0.1, 0.9], [0.8, 0.2]], dtype=np.float32)
    body = v1_response(probabilities, ["neg", "pos"], 7)
    assert body["predictions"] == ["pos", "neg"]
    assert body["classes"] == ["neg", "pos"]
    assert body["model_version"] == "7"
    np.testing.assert_allclose(body["probabilities"], probabilities)
