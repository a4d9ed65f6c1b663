"""`tf.train.Example` as a plain protobuf message, without importing TensorFlow.

The Beam workers only need to build and parse Examples; importing TensorFlow for
that costs each worker process seconds of start-up and hundreds of MB. The messages
below are declared with the same package, names, field numbers and types as
`tensorflow/core/example/{feature,example}.proto`, so they are the same on the
wire, and they live in a private descriptor pool so that a process that also
imports TensorFlow sees no clash.
"""

from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_LABEL_REPEATED = descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED
_LABEL_OPTIONAL = descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL
_TYPE = descriptor_pb2.FieldDescriptorProto


def _file_descriptor() -> descriptor_pb2.FileDescriptorProto:
    proto = descriptor_pb2.FileDescriptorProto(name="boxflow/tensorflow_example.proto", package="tensorflow",
                                               syntax="proto3")

    def message(name: str, *fields: tuple) -> descriptor_pb2.DescriptorProto:
        descriptor = proto.message_type.add(name=name)
        for field_name, number, field_type, label, type_name, *oneof in fields:
            field = descriptor.field.add(name=field_name, number=number, type=field_type, label=label)
            if type_name:
                field.type_name = type_name
            if oneof:
                field.oneof_index = oneof[0]
        return descriptor

    for name, field_type in (("BytesList", _TYPE.TYPE_BYTES), ("FloatList", _TYPE.TYPE_FLOAT),
                             ("Int64List", _TYPE.TYPE_INT64)):
        message(name, ("value", 1, field_type, _LABEL_REPEATED, None))
    feature = message(
        "Feature",
        ("bytes_list", 1, _TYPE.TYPE_MESSAGE, _LABEL_OPTIONAL, ".tensorflow.BytesList", 0),
        ("float_list", 2, _TYPE.TYPE_MESSAGE, _LABEL_OPTIONAL, ".tensorflow.FloatList", 0),
        ("int64_list", 3, _TYPE.TYPE_MESSAGE, _LABEL_OPTIONAL, ".tensorflow.Int64List", 0),
    )
    feature.oneof_decl.add(name="kind")
    features = message("Features", ("feature", 1, _TYPE.TYPE_MESSAGE, _LABEL_REPEATED,
                                    ".tensorflow.Features.FeatureEntry"))
    entry = features.nested_type.add(name="FeatureEntry")
    entry.options.map_entry = True
    entry.field.add(name="key", number=1, type=_TYPE.TYPE_STRING, label=_LABEL_OPTIONAL)
    entry.field.add(name="value", number=2, type=_TYPE.TYPE_MESSAGE, label=_LABEL_OPTIONAL,
                    type_name=".tensorflow.Feature")
    message("Example", ("features", 1, _TYPE.TYPE_MESSAGE, _LABEL_OPTIONAL, ".tensorflow.Features"))
    return proto


_POOL = descriptor_pool.DescriptorPool()
_POOL.Add(_file_descriptor())

Example = message_factory.GetMessageClass(_POOL.FindMessageTypeByName("tensorflow.Example"))
"""Wire-compatible with `tf.train.Example`: `Example.FromString(tf_example.SerializeToString())` works."""
