use super::*;

fn names2() -> ModelMetadata {
    ModelMetadata::from_pairs([("names", "{0: 'Normal', 1: 'Fall'}")])
}

fn ultralytics() -> ModelMetadata {
    ModelMetadata::from_pairs([
        ("author", "Ultralytics"),
        ("task", "detect"),
        ("stride", "32"),
        ("imgsz", "[640, 640]"),
        ("names", "{0: 'Normal', 1: 'Fall'}"),
    ])
}

fn none() -> ModelMetadata {
    ModelMetadata::default()
}

#[test]
fn names_parse() {
    let m = names2();
    assert_eq!(
        m.names().unwrap().values().collect::<Vec<_>>(),
        ["Normal", "Fall"]
    );
}

#[test]
fn common_shapes() {
    let v8 = Ok(OutputLayout::UltralyticsV8 { classes: 2 });
    assert_eq!(detect_layout(&[1, 6, 8400], &names2()), v8);
    assert_eq!(detect_layout(&[1, 6, 8400], &ultralytics()), v8);
    assert_eq!(detect_layout(&[1, 6, 8400], &none()), v8);
    assert_eq!(detect_layout(&[-1, 6, -1], &none()), v8);
    assert_eq!(
        detect_layout(&[1, 300, 6], &none()),
        Ok(OutputLayout::EndToEnd)
    );
    assert_eq!(
        detect_layout(&[1, 25200, 85], &none()),
        Ok(OutputLayout::YoloV5 { classes: 80 })
    );
    assert_eq!(
        detect_layout(&[-1, -1, 85], &none()),
        Ok(OutputLayout::YoloV5 { classes: 80 })
    );
    let v5 = ModelMetadata::from_pairs([("stride", "32"), ("names", "{0: 'a', 1: 'b'}")]);
    assert_eq!(
        detect_layout(&[1, 25200, 7], &v5),
        Ok(OutputLayout::YoloV5 { classes: 2 })
    );
    assert!(OutputLayout::YoloV5 { classes: 2 }.needs_nms());
    assert!(!OutputLayout::EndToEnd.needs_nms());
}

#[test]
fn fixture_shapes() {
    // The synthetic models of scripts/make_fixtures.py.
    let e2e =
        ModelMetadata::from_pairs([("end2end", "True"), ("names", "{0: 'Normal', 1: 'Fall'}")]);
    assert_eq!(detect_layout(&[1, 6, 6], &e2e), Ok(OutputLayout::EndToEnd));
    let v8 = Ok(OutputLayout::UltralyticsV8 { classes: 2 });
    assert_eq!(detect_layout(&[1, 6, 6], &ultralytics()), v8);
    assert_eq!(detect_layout(&[-1, 6, 6], &ultralytics()), v8);
    assert_eq!(
        detect_layout(&[1, 5, 7], &none()),
        Ok(OutputLayout::YoloV5 { classes: 2 })
    );
    assert_eq!(
        detect_layout(&[1, 7, 6], &ultralytics())
            .unwrap_err()
            .to_string(),
        "model output shape [1, 7, 6] reads as ultralytics with 3 classes but the model metadata names 2 classes"
    );
}

#[test]
fn unreadable_shapes() {
    assert_eq!(
        detect_layout(&[1, 8400], &none()).unwrap_err().to_string(),
        "model output shape [1, 8400] is not [batch, a, b]"
    );
    assert!(matches!(
        detect_layout(&[1, 0, 6], &none()),
        Err(LayoutError::Rank { .. })
    ));
    assert_eq!(
        detect_layout(&[1, 3, 4], &none()).unwrap_err().to_string(),
        "cannot tell the layout of model output shape [1, 3, 4]: no known layout fits; set the layout override (end2end, ultralytics or yolov5)"
    );
    let e2e = ModelMetadata::from_pairs([("end2end", "True")]);
    assert!(matches!(
        detect_layout(&[1, 300, 7], &e2e),
        Err(LayoutError::Ambiguous { .. })
    ));
}

#[test]
fn layout_override() {
    assert_eq!(LayoutKind::EndToEnd.with_classes(7), OutputLayout::EndToEnd);
    assert_eq!(
        LayoutKind::YoloV5.with_classes(80),
        OutputLayout::YoloV5 { classes: 80 }
    );
    assert_eq!(
        OutputLayout::for_shape(LayoutKind::UltralyticsV8, &[1, 84, 8400]),
        Ok(OutputLayout::UltralyticsV8 { classes: 80 })
    );
    assert_eq!(
        OutputLayout::for_shape(LayoutKind::YoloV5, &[1, 25200, 85]),
        Ok(OutputLayout::YoloV5 { classes: 80 })
    );
    assert!(OutputLayout::for_shape(LayoutKind::YoloV5, &[1, 25200, -1]).is_err());
}
