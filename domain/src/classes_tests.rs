use super::*;

const GOOD: &str = r##"[
  {"Id": 0, "Name": "Car", "Color": "#ff0000", "MaxSizeM": 7, "ShortName": "C", "Extra": 1},
  {"Id": 2, "Name": "Person", "Color": "#00FF7f", "MaxSizeM": 2.5}
]"##;

fn err(text: &str) -> String {
    ClassTable::from_json(text).unwrap_err().to_string()
}

#[test]
fn expanded_lookup() {
    let t = ClassTable::from_json(GOOD).unwrap();
    let v = t.get(0).unwrap();
    assert_eq!(
        (v.label(), v.max_size_m(), v.color(), v.base_id()),
        ("Car", 7.0, [255, 0, 0], 0)
    );
    assert_eq!(t.get(22).unwrap().label(), "Person(Wint)");
    assert_eq!(t.get(40).unwrap().label(), "Car(Night)");
    assert_eq!(t.get(42).unwrap().color(), [0, 255, 127]);
    assert_eq!(t.get(42).unwrap().class_num(), 42);
    assert!(t.get(1).is_none());
    assert!(t.get(60).is_none());
    assert!(t.get(u32::MAX).is_none());
    assert_eq!(t.entries().len(), 2);
}

#[test]
fn serialises_back_to_the_same_shape() {
    let t = ClassTable::from_json(GOOD).unwrap();
    let v: Value = serde_json::to_value(&t).unwrap();
    assert_eq!(
        v,
        serde_json::json!([
            {"Id": 0, "Name": "Car", "ShortName": "C", "Color": "#ff0000", "MaxSizeM": 7.0},
            {"Id": 2, "Name": "Person", "Color": "#00FF7f", "MaxSizeM": 2.5}
        ])
    );
}

#[test]
fn model_class_counts() {
    let t = ClassTable::from_json(GOOD).unwrap();
    assert!(t.check_model_classes(3).is_ok());
    assert!(t.check_model_classes(43).is_ok());
    assert_eq!(
        t.check_model_classes(80).unwrap_err().to_string(),
        "model has 80 classes but classes.json describes 3 (or 43 with weather variants)"
    );
}

#[test]
fn error_messages() {
    assert_eq!(
        err("[{"),
        "classes.json is not valid JSON at line 1, column 2: EOF while parsing an object at line 1 column 2"
    );
    assert_eq!(
        err("{}"),
        "classes.json must be a JSON array of classes, got an object"
    );
    assert_eq!(err("[]"), "classes.json has no classes");
    assert_eq!(
        err("[1]"),
        "classes.json entry 0: must be an object, got a number"
    );
    assert_eq!(
        err(r#"[{"Name": "x"}]"#),
        "classes.json entry 0: missing field Id"
    );
    assert_eq!(
        err(r#"[{"Id": "1"}]"#),
        "classes.json entry 0: field Id must be an integer, got a string"
    );
    assert_eq!(
        err(r#"[{"Id": 20}]"#),
        "classes.json entry 0: Id must be between 0 and 19 (weather variants use +20 and +40), got 20"
    );
    assert_eq!(
        err(r#"[{"Id": -1}]"#),
        "classes.json entry 0: Id must be between 0 and 19 (weather variants use +20 and +40), got -1"
    );
    assert_eq!(
        err(r#"[{"Id": 1.5}]"#),
        "classes.json entry 0: Id must be between 0 and 19 (weather variants use +20 and +40), got 1.5"
    );
    assert_eq!(
        err(r#"[{"Id": 3}]"#),
        "classes.json entry 0 (Id 3): missing field Name"
    );
    assert_eq!(
        err(r#"[{"Id": 3, "Name": 5}]"#),
        "classes.json entry 0 (Id 3): field Name must be a string, got a number"
    );
    assert_eq!(
        err(r#"[{"Id": 3, "Name": "a"}]"#),
        "classes.json entry 0 (Id 3): missing field Color"
    );
    assert_eq!(
        err(r#"[{"Id": 3, "Name": "a", "Color": "red", "MaxSizeM": 1}]"#),
        "classes.json entry 0 (Id 3): Color must be #rrggbb hex, got \"red\""
    );
    assert_eq!(
        err(r##"[{"Id": 3, "Name": "a", "Color": "#12345g", "MaxSizeM": 1}]"##),
        "classes.json entry 0 (Id 3): Color must be #rrggbb hex, got \"#12345g\""
    );
    assert_eq!(
        err(r##"[{"Id": 3, "Name": "a", "Color": "#123456"}]"##),
        "classes.json entry 0 (Id 3): missing field MaxSizeM"
    );
    assert_eq!(
        err(r##"[{"Id": 3, "Name": "a", "Color": "#123456", "MaxSizeM": "7"}]"##),
        "classes.json entry 0 (Id 3): field MaxSizeM must be a number, got a string"
    );
    assert_eq!(
        err(r##"[{"Id": 3, "Name": "a", "Color": "#123456", "MaxSizeM": 0}]"##),
        "classes.json entry 0 (Id 3): MaxSizeM must be a positive finite number, got 0"
    );
    assert_eq!(
        err(r##"[{"Id": 3, "Name": "a", "Color": "#123456", "MaxSizeM": 1, "ShortName": 2}]"##),
        "classes.json entry 0 (Id 3): field ShortName must be a string, got a number"
    );
    assert_eq!(
        err(
            r##"[{"Id": 3, "Name": "a", "Color": "#123456", "MaxSizeM": 1},
                 {"Id": 3, "Name": "b", "Color": "#123456", "MaxSizeM": 1}]"##
        ),
        "classes.json entry 1 (Id 3): duplicate Id, already used by entry 0"
    );
}
