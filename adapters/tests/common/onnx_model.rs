//! Tiny ONNX models written in-test (protobuf by hand), so the engine's handling of element
//! types, dynamic dimensions and metadata is tested without third-party files.

/// Element types, as ONNX numbers them.
pub const FLOAT: i64 = 1;
pub const INT8: i64 = 3;
pub const INT64: i64 = 7;
pub const FLOAT16: i64 = 10;

/// A dimension: fixed, or named and dynamic.
pub enum Dim {
    Fixed(i64),
    Dynamic(&'static str),
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn int_field(out: &mut Vec<u8>, field: u32, v: i64) {
    varint(out, u64::from(field << 3));
    varint(out, v as u64);
}

fn bytes_field(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    varint(out, u64::from(field << 3 | 2));
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn message(field: u32, build: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut inner = Vec::new();
    build(&mut inner);
    let mut out = Vec::new();
    bytes_field(&mut out, field, &inner);
    out
}

/// ValueInfoProto for a tensor input or output.
fn value_info(field: u32, name: &str, elem: i64, dims: &[Dim]) -> Vec<u8> {
    message(field, |v| {
        bytes_field(v, 1, name.as_bytes());
        v.extend(message(2, |t| {
            t.extend(message(1, |tensor| {
                int_field(tensor, 1, elem);
                tensor.extend(message(2, |shape| {
                    for dim in dims {
                        shape.extend(message(1, |d| match dim {
                            Dim::Fixed(n) => int_field(d, 1, *n),
                            Dim::Dynamic(p) => bytes_field(d, 2, p.as_bytes()),
                        }));
                    }
                }));
            }));
        }));
    })
}

fn node(op: &str, inputs: &[&str], output: &str, int_attr: Option<(&str, i64)>) -> Vec<u8> {
    message(1, |n| {
        for input in inputs {
            bytes_field(n, 1, input.as_bytes());
        }
        bytes_field(n, 2, output.as_bytes());
        bytes_field(n, 4, op.as_bytes());
        if let Some((name, value)) = int_attr {
            n.extend(message(5, |a| {
                bytes_field(a, 1, name.as_bytes());
                int_field(a, 3, value);
                int_field(a, 20, 2); // AttributeProto.INT
            }));
        }
    })
}

fn int64_initializer(name: &str, values: &[i64]) -> Vec<u8> {
    message(5, |t| {
        int_field(t, 1, values.len() as i64);
        int_field(t, 2, INT64);
        for v in values {
            int_field(t, 7, *v);
        }
        bytes_field(t, 8, name.as_bytes());
    })
}

/// `images [batch, 3, h, w]` of `elem` → `output0 [batch, 6, h·w]`: the three colour planes,
/// twice. With two class names this reads as an Ultralytics v8 output whose values are the
/// input pixels, so a test can check what the engine was fed.
pub fn planes_model(elem: i64, input_dims: [Dim; 4], metadata: &[(&str, &str)]) -> Vec<u8> {
    let mut graph = Vec::new();
    graph.extend(node("Reshape", &["images", "shape"], "flat", None));
    graph.extend(node(
        "Concat",
        &["flat", "flat"],
        "output0",
        Some(("axis", 1)),
    ));
    bytes_field(&mut graph, 2, b"planes");
    graph.extend(int64_initializer("shape", &[0, 3, -1]));
    graph.extend(value_info(11, "images", elem, &input_dims));
    let out_dims = [
        Dim::Dynamic("batch"),
        Dim::Fixed(6),
        Dim::Dynamic("anchors"),
    ];
    graph.extend(value_info(12, "output0", elem, &out_dims));

    let mut model = Vec::new();
    int_field(&mut model, 1, 8); // ir_version
    model.extend(message(8, |o| {
        bytes_field(o, 1, b"");
        int_field(o, 2, 17);
    }));
    bytes_field(&mut model, 7, &graph);
    for (key, value) in metadata {
        model.extend(message(14, |m| {
            bytes_field(m, 1, key.as_bytes());
            bytes_field(m, 2, value.as_bytes());
        }));
    }
    model
}
