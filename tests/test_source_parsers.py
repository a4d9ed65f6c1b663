"""The pure parsers of each source format, on small hand-written inputs."""

import pytest

from beam_jobs.source_records import AnnotationError, Reason
from beam_jobs.sources.coco import parse_coco
from beam_jobs.sources.csv_rows import parse_column_roles, parse_csv_text
from beam_jobs.sources.voc import parse_voc_xml
from beam_jobs.sources.yolo import parse_yolo_text
from contracts.errors import BoxflowError
from tests.builders import voc_xml


def test_voc_flags_and_missing_size():
    xml = voc_xml("a.jpg", None, None, [("cat", (1, 2, 3, 4))]).replace(
        "<difficult>0</difficult>", "<difficult>1</difficult>")
    image = parse_voc_xml(xml.encode(), "ann/a.xml", "imgs", split="val")
    assert (image.width, image.height, image.image_path, image.split) == (None, None, "imgs/a.jpg", "val")
    (obj,) = image.objects
    assert (obj.class_name, obj.box, obj.difficult, obj.truncated) == ("cat", (1.0, 2.0, 3.0, 4.0), True, False)


def test_voc_rejects_billion_laughs_and_malformed_xml():
    bomb = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;">]><annotation>&b;</annotation>'
    for data in (bomb, b"<annotation><object>", b"<other/>"):
        with pytest.raises(AnnotationError, match="ann/x.xml"):
            parse_voc_xml(data, "ann/x.xml", "imgs")


def test_yolo_converts_center_size_to_corners():
    image = parse_yolo_text("1 0.5 0.25 0.2 0.1\n", "imgs/p.jpg", "labels/p.txt", ("a", "b"))
    assert image.boxes_normalized and image.source_id == "p"
    assert image.objects[0].class_name == "b"
    assert image.objects[0].box == pytest.approx((0.4, 0.2, 0.6, 0.3))


def test_csv_bccd_column_order_header_and_negative_rows():
    roles = parse_column_roles("filename,class,xmin,xmax,ymin,ymax")
    text = "filename,cell_type,xmin,xmax,ymin,ymax\na.jpg,RBC,10,20,30,40\nb.jpg,,,,,\na.jpg,WBC,1,x,3,4\n"
    a, b = parse_csv_text(text, "t.csv", "imgs", roles)
    assert [o.box for o in a.objects] == [(10.0, 30.0, 20.0, 40.0)]
    assert a.parse_rejections[0].source == "t.csv:4" and a.parse_rejections[0].reason is Reason.ANNOTATION_MALFORMED
    assert b.objects == () and b.image_path == "imgs/b.jpg"


def test_csv_column_roles_are_checked():
    with pytest.raises(BoxflowError, match="unknown column role"):
        parse_column_roles("filename,klass,xmin,ymin,xmax,ymax")
    with pytest.raises(BoxflowError, match="missing required role"):
        parse_column_roles("filename,class,xmin,ymin,xmax")


def test_coco_structure_errors_name_the_file():
    with pytest.raises(BoxflowError, match="inst.json: COCO JSON field 'categories'"):
        parse_coco({"images": []}, "imgs", "inst.json")
    with pytest.raises(BoxflowError, match="category id 1 appears twice"):
        parse_coco({"images": [], "categories": [{"id": 1, "name": "a"}, {"id": 1, "name": "b"}]}, "imgs", "inst.json")
