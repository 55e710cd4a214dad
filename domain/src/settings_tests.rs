use super::*;
use proptest::prelude::*;
use serde_json::json;

fn err(v: Value) -> String {
    SettingsPatch::from_json(&v).unwrap_err().to_string()
}

fn apply(v: Value) -> RecognitionSettings {
    RecognitionSettings::default().merged(&SettingsPatch::from_json(&v).unwrap())
}

#[test]
fn casing_and_lax_numbers() {
    let s = apply(json!({
        "probability_threshold": 0.5,
        "frameRecognitionSeconds": "3.5",
        "ModelBatchSize": 8.0,
        "BigImageTileOverlapPercent": " 30 ",
        "altitude": null,
        "unknown": [1, 2],
    }));
    assert_eq!(s.probability_threshold(), 0.5);
    assert_eq!(s.frame_recognition_seconds(), 3.5);
    assert_eq!(s.model_batch_size(), 8);
    assert_eq!(s.big_image_tile_overlap_percent(), 30);
    assert_eq!(s.altitude(), 400.0);
}

#[test]
fn errors_name_the_key() {
    assert_eq!(
        err(json!({"probability_threshold": 1.5})),
        "probability_threshold must be between 0 and 1, got 1.5"
    );
    assert_eq!(
        err(json!({"ProbabilityThreshold": true})),
        "probability_threshold must be a number, got a boolean"
    );
    assert_eq!(
        err(json!({"altitude": "high"})),
        "altitude must be a number, got \"high\""
    );
    assert_eq!(
        err(json!({"altitude": "NaN"})),
        "altitude must be a number, got \"NaN\""
    );
    assert_eq!(
        err(json!({"altitude": 0})),
        "altitude must be greater than 0, got 0"
    );
    assert_eq!(
        err(json!({"modelBatchSize": 65})),
        "model_batch_size must be between 1 and 64, got 65"
    );
    assert_eq!(
        err(json!({"model_batch_size": 2.5})),
        "model_batch_size must be an integer, got 2.5"
    );
    assert_eq!(
        err(json!({"frame_period_recognition": 0})),
        "frame_period_recognition must be at least 1, got 0"
    );
    assert_eq!(
        err(json!({"frame_period_recognition": 1e20})),
        "frame_period_recognition must be at least 1, got 100000000000000000000"
    );
    assert_eq!(
        err(json!({"frame_recognition_seconds": -1})),
        "frame_recognition_seconds must be at least 0, got -1"
    );
    assert_eq!(
        err(json!({"big_image_tile_overlap_percent": {}})),
        "big_image_tile_overlap_percent must be a number, got an object"
    );
    assert_eq!(
        err(json!([1])),
        "settings must be a JSON object, got an array"
    );
    assert!(
        SettingsPatch::from_json_str("{")
            .unwrap_err()
            .to_string()
            .starts_with("settings are not valid JSON: ")
    );
}

#[test]
fn two_merges_and_serialisation() {
    let stored =
        SettingsPatch::from_json_str(r#"{"Altitude": 100, "probabilityThreshold": 0.4}"#).unwrap();
    let request = SettingsPatch::from_json_str(r#"{"altitude": 200}"#).unwrap();
    assert_eq!(request.keys().collect::<Vec<_>>(), ["altitude"]);
    let s = RecognitionSettings::default()
        .merged(&stored)
        .merged(&request);
    assert_eq!((s.altitude(), s.probability_threshold()), (200.0, 0.4));
    let v = serde_json::to_value(RecognitionSettings::default()).unwrap();
    assert_eq!(v["frame_period_recognition"], json!(4));
    assert_eq!(v["sensor_width"], json!(23.5));
    assert_eq!(v["tile_merge"], json!(true));
    assert_eq!(v["tile_merge_threshold"], json!(0.5));
    assert_eq!(v.as_object().unwrap().len(), 14);
    assert!(SettingsPatch::from_json(&json!({})).unwrap().is_empty());
}

#[test]
fn tile_merge_settings() {
    let d = RecognitionSettings::default();
    assert!(d.tile_merge() && d.tile_full_frame_pass());
    assert_eq!(d.tile_merge_threshold(), 0.5);
    // Booleans as pydantic's lax mode reads them, in any casing of the key.
    for (raw, want) in [
        (json!(false), false),
        (json!(0), false),
        (json!("off"), false),
        (json!(" No "), false),
        (json!(true), true),
        (json!(1), true),
        (json!("TRUE"), true),
    ] {
        let s = apply(json!({"TileMerge": raw}));
        assert_eq!(s.tile_merge(), want, "{raw}");
    }
    // Merging off turns the full-frame pass off with it: the original's results.
    let s = apply(json!({"tile_merge": false, "tile_full_frame_pass": true}));
    assert!(!s.tile_full_frame_pass());
    let s = apply(json!({"tileFullFramePass": "no", "tile_merge_threshold": "0.3"}));
    assert!(s.tile_merge() && !s.tile_full_frame_pass());
    assert_eq!(s.tile_merge_threshold(), 0.3);
    assert_eq!(
        err(json!({"tile_merge": "maybe"})),
        "tile_merge must be true or false, got \"maybe\""
    );
    assert_eq!(
        err(json!({"tile_full_frame_pass": 2})),
        "tile_full_frame_pass must be true or false, got 2"
    );
    assert_eq!(
        err(json!({"tile_merge": [true]})),
        "tile_merge must be true or false, got an array"
    );
    assert_eq!(
        err(json!({"tile_merge_threshold": 1.5})),
        "tile_merge_threshold must be between 0 and 1, got 1.5"
    );
}

#[test]
fn gsd_example() {
    // 23.5 mm × 400 m ÷ (24 mm × 5472 px) ≈ 0.0716 m/px.
    let g = RecognitionSettings::default().ground_sampling_distance(5472);
    assert!((g - 9400.0 / 131_328.0).abs() < 1e-12);
    assert!((g - 0.071_577).abs() < 1e-6);
}

proptest! {
    #[test]
    fn patch_over_defaults(thr in proptest::option::of(0.0f64..=1.0),
                           batch in proptest::option::of(1u32..=64),
                           alt in proptest::option::of(0.001f64..10_000.0),
                           overlap in proptest::option::of(0u32..=99)) {
        let mut obj = serde_json::Map::new();
        if let Some(v) = thr { obj.insert("probabilityThreshold".into(), json!(v)); }
        if let Some(v) = batch { obj.insert("model_batch_size".into(), json!(v)); }
        if let Some(v) = alt { obj.insert("Altitude".into(), json!(v.to_string())); }
        if let Some(v) = overlap { obj.insert("big_image_tile_overlap_percent".into(), json!(v)); }
        let d = RecognitionSettings::default();
        let s = d.merged(&SettingsPatch::from_json(&Value::Object(obj)).unwrap());
        prop_assert_eq!(s.probability_threshold(), thr.unwrap_or(d.probability_threshold()));
        prop_assert_eq!(s.model_batch_size(), batch.unwrap_or(d.model_batch_size()));
        prop_assert_eq!(s.altitude(), alt.unwrap_or(d.altitude()));
        prop_assert_eq!(s.big_image_tile_overlap_percent(), overlap.unwrap_or(d.big_image_tile_overlap_percent()));
        prop_assert_eq!(s.focal_length(), d.focal_length());
        prop_assert_eq!(s.frame_period_recognition(), d.frame_period_recognition());
    }

    #[test]
    fn patch_reads_back_from_its_json(thr in proptest::option::of(0.0f64..=1.0),
                                      batch in proptest::option::of(1u32..=64),
                                      merge in proptest::option::of(any::<bool>())) {
        let mut obj = serde_json::Map::new();
        if let Some(v) = thr { obj.insert("probabilityThreshold".into(), json!(v)); }
        if let Some(v) = batch { obj.insert("ModelBatchSize".into(), json!(v)); }
        if let Some(v) = merge { obj.insert("tile_merge".into(), json!(v)); }
        let patch = SettingsPatch::from_json(&Value::Object(obj)).unwrap();
        prop_assert_eq!(SettingsPatch::from_json(&patch.to_json()).unwrap(), patch);
    }
}

#[test]
fn typed_setters_check_as_json_does() {
    let patch = SettingsPatch::default()
        .with_probability_threshold(0.4)
        .unwrap()
        .with_model_batch_size(8)
        .unwrap();
    let s = RecognitionSettings::default().merged(&patch);
    assert_eq!((s.probability_threshold(), s.model_batch_size()), (0.4, 8));
    assert_eq!(
        SettingsPatch::default()
            .with_probability_threshold(1.5)
            .unwrap_err()
            .to_string(),
        "probability_threshold must be between 0 and 1, got 1.5"
    );
    assert_eq!(
        SettingsPatch::default()
            .with_model_batch_size(65)
            .unwrap_err()
            .to_string(),
        "model_batch_size must be between 1 and 64, got 65"
    );
}
