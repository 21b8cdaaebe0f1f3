//! Reading, rewriting and building ONNX model files without ONNX Runtime.
//!
//! ONNX files are protocol-buffer messages. This module holds a small, lossless
//! wire-format codec: every field is kept (unknown ones too) and borrowed from
//! the input, so a 500 MB model is parsed without copying its weights, and a
//! rewritten model differs from the original only where it was edited.
//!
//! ```no_run
//! # fn main() -> camshow_core::Result<()> {
//! let bytes = std::fs::read("centerface.onnx").unwrap();
//! let model = camshow_core::onnx::OnnxModel::parse(&bytes)?;
//! for input in model.inputs()? { println!("{} {:?}", input.name, input.dims); }
//! let emap = model.initializer(model.initializer_count()? - 1)?; // last initializer
//! # Ok(()) }
//! ```

use std::borrow::Cow;

use crate::error::{Error, Result};

fn bad(msg: impl Into<String>) -> Error {
    Error::OnnxFormat(msg.into())
}

// ---------------------------------------------------------------------------
// Wire format
// ---------------------------------------------------------------------------

/// One field's payload.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    /// Wire type 0.
    Varint(u64),
    /// Wire type 1.
    Fixed64(u64),
    /// Wire type 2: bytes, strings, sub-messages and packed arrays.
    Bytes(Cow<'a, [u8]>),
    /// Wire type 5.
    Fixed32(u32),
}

/// A field number with its payload.
#[derive(Debug, Clone, PartialEq)]
pub struct Field<'a> {
    /// The protobuf field number.
    pub number: u32,
    /// The payload.
    pub value: Value<'a>,
}

/// A decoded message: its fields in file order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Message<'a> {
    /// Fields in the order they appear.
    pub fields: Vec<Field<'a>>,
}

fn read_varint(buf: &[u8], pos: &mut usize) -> Result<u64> {
    let mut result = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *buf.get(*pos).ok_or_else(|| bad("truncated varint"))?;
        *pos += 1;
        result |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(result);
        }
    }
    Err(bad("varint longer than 10 bytes"))
}

fn write_varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn take<'a>(buf: &'a [u8], pos: &mut usize, len: usize) -> Result<&'a [u8]> {
    let end = pos
        .checked_add(len)
        .filter(|&e| e <= buf.len())
        .ok_or_else(|| bad("truncated field"))?;
    let s = &buf[*pos..end];
    *pos = end;
    Ok(s)
}

impl<'a> Message<'a> {
    /// Decodes a message, borrowing length-delimited payloads from `buf`.
    pub fn parse(buf: &'a [u8]) -> Result<Self> {
        let mut pos = 0;
        let mut fields = Vec::new();
        while pos < buf.len() {
            let key = read_varint(buf, &mut pos)?;
            let number = u32::try_from(key >> 3).map_err(|_| bad("field number too large"))?;
            if number == 0 {
                return Err(bad("field number 0"));
            }
            let value = match key & 7 {
                0 => Value::Varint(read_varint(buf, &mut pos)?),
                1 => Value::Fixed64(u64::from_le_bytes(
                    take(buf, &mut pos, 8)?
                        .try_into()
                        .map_err(|_| bad("fixed64"))?,
                )),
                2 => {
                    let len = usize::try_from(read_varint(buf, &mut pos)?)
                        .map_err(|_| bad("length too large"))?;
                    Value::Bytes(Cow::Borrowed(take(buf, &mut pos, len)?))
                }
                5 => Value::Fixed32(u32::from_le_bytes(
                    take(buf, &mut pos, 4)?
                        .try_into()
                        .map_err(|_| bad("fixed32"))?,
                )),
                w => return Err(bad(format!("unsupported wire type {w} (field {number})"))),
            };
            fields.push(Field { number, value });
        }
        Ok(Self { fields })
    }

    /// Encodes the message.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len_hint());
        self.encode_into(&mut out);
        out
    }

    fn encoded_len_hint(&self) -> usize {
        self.fields
            .iter()
            .map(|f| match &f.value {
                Value::Bytes(b) => b.len() + 6,
                _ => 11,
            })
            .sum()
    }

    fn encode_into(&self, out: &mut Vec<u8>) {
        for f in &self.fields {
            let key = u64::from(f.number) << 3;
            match &f.value {
                Value::Varint(v) => {
                    write_varint(key, out);
                    write_varint(*v, out);
                }
                Value::Fixed64(v) => {
                    write_varint(key | 1, out);
                    out.extend_from_slice(&v.to_le_bytes());
                }
                Value::Bytes(b) => {
                    write_varint(key | 2, out);
                    write_varint(b.len() as u64, out);
                    out.extend_from_slice(b);
                }
                Value::Fixed32(v) => {
                    write_varint(key | 5, out);
                    out.extend_from_slice(&v.to_le_bytes());
                }
            }
        }
    }

    /// Payloads of every length-delimited field with this number.
    pub fn bytes(&self, number: u32) -> impl Iterator<Item = &[u8]> + '_ {
        self.fields
            .iter()
            .filter(move |f| f.number == number)
            .filter_map(|f| match &f.value {
                Value::Bytes(b) => Some(b.as_ref()),
                _ => None,
            })
    }

    /// The last varint field with this number (protobuf's "last one wins").
    pub fn varint(&self, number: u32) -> Option<u64> {
        self.fields
            .iter()
            .rev()
            .find(|f| f.number == number)
            .and_then(|f| match f.value {
                Value::Varint(v) => Some(v),
                _ => None,
            })
    }

    /// The last string field with this number.
    pub fn string(&self, number: u32) -> Result<Option<String>> {
        self.bytes(number)
            .last()
            .map(|b| String::from_utf8(b.to_vec()).map_err(|_| bad("string is not UTF-8")))
            .transpose()
    }

    /// Repeated int64 values, packed or not.
    pub fn int64s(&self, number: u32) -> Result<Vec<i64>> {
        let mut out = Vec::new();
        for f in self.fields.iter().filter(|f| f.number == number) {
            match &f.value {
                Value::Varint(v) => out.push(*v as i64),
                Value::Bytes(b) => {
                    let mut pos = 0;
                    while pos < b.len() {
                        out.push(read_varint(b, &mut pos)? as i64);
                    }
                }
                _ => return Err(bad("int64 field with a fixed wire type")),
            }
        }
        Ok(out)
    }

    /// Replaces each length-delimited field `number` by `edit(payload)`, in place.
    fn edit_each(
        &mut self,
        number: u32,
        mut edit: impl FnMut(&[u8]) -> Result<Option<Vec<u8>>>,
    ) -> Result<()> {
        for f in self.fields.iter_mut().filter(|f| f.number == number) {
            if let Value::Bytes(b) = &f.value
                && let Some(new) = edit(b)?
            {
                f.value = Value::Bytes(Cow::Owned(new));
            }
        }
        Ok(())
    }

    fn push_varint(&mut self, number: u32, v: u64) -> &mut Self {
        self.fields.push(Field {
            number,
            value: Value::Varint(v),
        });
        self
    }

    fn push_bytes(&mut self, number: u32, b: impl Into<Vec<u8>>) -> &mut Self {
        self.fields.push(Field {
            number,
            value: Value::Bytes(Cow::Owned(b.into())),
        });
        self
    }
}

// ---------------------------------------------------------------------------
// ONNX field numbers (onnx.proto3)
// ---------------------------------------------------------------------------

mod tag {
    pub const MODEL_IR_VERSION: u32 = 1;
    pub const MODEL_PRODUCER: u32 = 2;
    pub const MODEL_GRAPH: u32 = 7;
    pub const MODEL_OPSET: u32 = 8;
    pub const OPSET_DOMAIN: u32 = 1;
    pub const OPSET_VERSION: u32 = 2;
    pub const GRAPH_NODE: u32 = 1;
    pub const GRAPH_NAME: u32 = 2;
    pub const GRAPH_INITIALIZER: u32 = 5;
    pub const GRAPH_INPUT: u32 = 11;
    pub const GRAPH_OUTPUT: u32 = 12;
    pub const NODE_INPUT: u32 = 1;
    pub const NODE_OUTPUT: u32 = 2;
    pub const NODE_NAME: u32 = 3;
    pub const NODE_OP: u32 = 4;
    pub const NODE_ATTR: u32 = 5;
    pub const ATTR_NAME: u32 = 1;
    pub const ATTR_F: u32 = 2;
    pub const ATTR_I: u32 = 3;
    pub const ATTR_S: u32 = 4;
    pub const ATTR_T: u32 = 5;
    pub const ATTR_FLOATS: u32 = 7;
    pub const ATTR_INTS: u32 = 8;
    pub const ATTR_TYPE: u32 = 20;
    pub const VI_NAME: u32 = 1;
    pub const VI_TYPE: u32 = 2;
    pub const TYPE_TENSOR: u32 = 1;
    pub const TENSOR_TYPE_ELEM: u32 = 1;
    pub const TENSOR_TYPE_SHAPE: u32 = 2;
    pub const SHAPE_DIM: u32 = 1;
    pub const DIM_VALUE: u32 = 1;
    pub const DIM_PARAM: u32 = 2;
    pub const TENSOR_DIMS: u32 = 1;
    pub const TENSOR_DATA_TYPE: u32 = 2;
    pub const TENSOR_FLOAT_DATA: u32 = 4;
    pub const TENSOR_INT32_DATA: u32 = 5;
    pub const TENSOR_INT64_DATA: u32 = 7;
    pub const TENSOR_NAME: u32 = 8;
    pub const TENSOR_RAW: u32 = 9;
    pub const TENSOR_DOUBLE_DATA: u32 = 10;
    pub const TENSOR_DATA_LOCATION: u32 = 14;
}

/// ONNX `TensorProto.DataType` values used here.
pub mod dtype {
    /// float32
    pub const FLOAT: i32 = 1;
    /// uint8
    pub const UINT8: i32 = 2;
    /// int32
    pub const INT32: i32 = 6;
    /// int64
    pub const INT64: i32 = 7;
    /// float16
    pub const FLOAT16: i32 = 10;
    /// float64
    pub const DOUBLE: i32 = 11;
}

/// One dimension of a tensor shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dim {
    /// A fixed size.
    Fixed(i64),
    /// A named, symbolic size.
    Symbolic(String),
    /// Unknown.
    Unknown,
}

impl Dim {
    /// The fixed size, if any.
    pub fn fixed(&self) -> Option<i64> {
        match self {
            Self::Fixed(v) => Some(*v),
            _ => None,
        }
    }
}

/// A graph input or output.
#[derive(Debug, Clone, PartialEq)]
pub struct ValueInfo {
    /// Tensor name.
    pub name: String,
    /// Element type (see [`dtype`]); 0 when not a tensor.
    pub elem_type: i32,
    /// Shape, when declared.
    pub dims: Vec<Dim>,
}

/// An initializer's metadata and data.
#[derive(Debug, Clone, PartialEq)]
pub struct Initializer {
    /// Name.
    pub name: String,
    /// Shape.
    pub dims: Vec<i64>,
    /// Element type.
    pub data_type: i32,
    /// Values converted to f32 (float, float16, double and integer tensors).
    pub data: Vec<f32>,
}

/// A parsed ONNX model: top-level and graph messages.
#[derive(Debug, Clone)]
pub struct OnnxModel<'a> {
    model: Message<'a>,
    graph: Message<'a>,
}

fn parse_value_info(buf: &[u8]) -> Result<ValueInfo> {
    let vi = Message::parse(buf)?;
    let name = vi.string(tag::VI_NAME)?.unwrap_or_default();
    let mut elem_type = 0;
    let mut dims = Vec::new();
    if let Some(t) = vi.bytes(tag::VI_TYPE).last() {
        let ty = Message::parse(t)?;
        if let Some(tt) = ty.bytes(tag::TYPE_TENSOR).last() {
            let tt = Message::parse(tt)?;
            elem_type = tt.varint(tag::TENSOR_TYPE_ELEM).unwrap_or(0) as i32;
            if let Some(shape) = tt.bytes(tag::TENSOR_TYPE_SHAPE).last() {
                for d in Message::parse(shape)?.bytes(tag::SHAPE_DIM) {
                    let d = Message::parse(d)?;
                    dims.push(if let Some(v) = d.varint(tag::DIM_VALUE) {
                        Dim::Fixed(v as i64)
                    } else if let Some(p) = d.string(tag::DIM_PARAM)? {
                        Dim::Symbolic(p)
                    } else {
                        Dim::Unknown
                    });
                }
            }
        }
    }
    Ok(ValueInfo {
        name,
        elem_type,
        dims,
    })
}

fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h >> 15) << 31;
    let exp = u32::from((h >> 10) & 0x1f);
    let mant = u32::from(h & 0x3ff);
    let bits = match (exp, mant) {
        (0, 0) => sign,
        (0, m) => {
            // subnormal: normalise
            let mut e = 127 - 15 + 1;
            let mut m = m;
            while m & 0x400 == 0 {
                m <<= 1;
                e -= 1;
            }
            sign | ((e as u32) << 23) | ((m & 0x3ff) << 13)
        }
        (0x1f, m) => sign | 0x7f80_0000 | (m << 13),
        (e, m) => sign | ((e + 127 - 15) << 23) | (m << 13),
    };
    f32::from_bits(bits)
}

fn parse_initializer(buf: &[u8]) -> Result<Initializer> {
    let t = Message::parse(buf)?;
    let name = t.string(tag::TENSOR_NAME)?.unwrap_or_default();
    let dims = t.int64s(tag::TENSOR_DIMS)?;
    let data_type = t.varint(tag::TENSOR_DATA_TYPE).unwrap_or(0) as i32;
    if t.varint(tag::TENSOR_DATA_LOCATION) == Some(1) {
        return Err(bad(format!(
            "initializer {name} uses external data, which is not supported"
        )));
    }
    // A shape with negative or overflowing dimensions names no real tensor.
    let count = dims
        .iter()
        .try_fold(
            1i64,
            |acc, &d| if d < 0 { None } else { acc.checked_mul(d) },
        )
        .ok_or_else(|| {
            bad(format!(
                "initializer {name} has an impossible shape {dims:?}"
            ))
        })?;
    let data: Vec<f32> = if let Some(raw) = t.bytes(tag::TENSOR_RAW).last() {
        match data_type {
            dtype::FLOAT => raw
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            dtype::FLOAT16 => raw
                .chunks_exact(2)
                .map(|c| f16_to_f32(u16::from_le_bytes([c[0], c[1]])))
                .collect(),
            dtype::DOUBLE => raw
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])) as f32)
                .collect(),
            dtype::INT64 => raw
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8])) as f32)
                .collect(),
            dtype::INT32 => raw
                .chunks_exact(4)
                .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f32)
                .collect(),
            dtype::UINT8 => raw.iter().map(|&b| f32::from(b)).collect(),
            other => {
                return Err(bad(format!(
                    "initializer {name} has data type {other}, which is not read"
                )));
            }
        }
    } else {
        match data_type {
            dtype::FLOAT => {
                let mut out = Vec::new();
                for f in t
                    .fields
                    .iter()
                    .filter(|f| f.number == tag::TENSOR_FLOAT_DATA)
                {
                    match &f.value {
                        Value::Bytes(b) => out.extend(
                            b.chunks_exact(4)
                                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
                        ),
                        Value::Fixed32(v) => out.push(f32::from_bits(*v)),
                        _ => return Err(bad("float_data with a wrong wire type")),
                    }
                }
                out
            }
            dtype::DOUBLE => {
                let mut out = Vec::new();
                for b in t.bytes(tag::TENSOR_DOUBLE_DATA) {
                    out.extend(
                        b.chunks_exact(8)
                            .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])) as f32),
                    );
                }
                out
            }
            dtype::INT64 => t
                .int64s(tag::TENSOR_INT64_DATA)?
                .into_iter()
                .map(|v| v as f32)
                .collect(),
            dtype::INT32 | dtype::UINT8 => t
                .int64s(tag::TENSOR_INT32_DATA)?
                .into_iter()
                .map(|v| v as i32 as f32)
                .collect(),
            other => {
                return Err(bad(format!(
                    "initializer {name} has data type {other}, which is not read"
                )));
            }
        }
    };
    if data.len() as i64 != count {
        return Err(bad(format!(
            "initializer {name} holds {} values for shape {dims:?}",
            data.len()
        )));
    }
    Ok(Initializer {
        name,
        dims,
        data_type,
        data,
    })
}

impl<'a> OnnxModel<'a> {
    /// Parses a serialized `ModelProto`.
    pub fn parse(bytes: &'a [u8]) -> Result<Self> {
        let model = Message::parse(bytes)?;
        let graph_bytes = match model
            .fields
            .iter()
            .rev()
            .find(|f| f.number == tag::MODEL_GRAPH)
        {
            Some(Field {
                value: Value::Bytes(Cow::Borrowed(b)),
                ..
            }) => *b,
            _ => return Err(bad("no graph in model")),
        };
        let graph = Message::parse(graph_bytes)?;
        if model.varint(tag::MODEL_IR_VERSION).is_none() {
            return Err(bad("no ir_version: not an ONNX model"));
        }
        Ok(Self { model, graph })
    }

    /// The IR version.
    pub fn ir_version(&self) -> i64 {
        self.model.varint(tag::MODEL_IR_VERSION).unwrap_or(0) as i64
    }

    /// The producer name, if recorded.
    pub fn producer(&self) -> Result<Option<String>> {
        self.model.string(tag::MODEL_PRODUCER)
    }

    /// (domain, version) of every imported operator set.
    pub fn opsets(&self) -> Result<Vec<(String, i64)>> {
        self.model
            .bytes(tag::MODEL_OPSET)
            .map(|b| {
                let m = Message::parse(b)?;
                Ok((
                    m.string(tag::OPSET_DOMAIN)?.unwrap_or_default(),
                    m.varint(tag::OPSET_VERSION).unwrap_or(0) as i64,
                ))
            })
            .collect()
    }

    fn initializer_names(&self) -> Result<std::collections::HashSet<String>> {
        self.graph
            .bytes(tag::GRAPH_INITIALIZER)
            .map(|b| {
                Ok(Message::parse(b)?
                    .string(tag::TENSOR_NAME)?
                    .unwrap_or_default())
            })
            .collect()
    }

    /// The graph's real inputs: declared inputs that are not initializers (old
    /// IR versions list every weight as an input too).
    pub fn inputs(&self) -> Result<Vec<ValueInfo>> {
        let inits = self.initializer_names()?;
        Ok(self
            .graph
            .bytes(tag::GRAPH_INPUT)
            .map(parse_value_info)
            .collect::<Result<Vec<_>>>()?
            .into_iter()
            .filter(|v| !inits.contains(&v.name))
            .collect())
    }

    /// The graph outputs, in order.
    pub fn outputs(&self) -> Result<Vec<ValueInfo>> {
        self.graph
            .bytes(tag::GRAPH_OUTPUT)
            .map(parse_value_info)
            .collect()
    }

    /// Number of initializers.
    pub fn initializer_count(&self) -> Result<usize> {
        Ok(self.graph.bytes(tag::GRAPH_INITIALIZER).count())
    }

    /// The initializer at `index` in file order (the inswapper `emap` is the last one).
    pub fn initializer(&self, index: usize) -> Result<Initializer> {
        let raw = self
            .graph
            .bytes(tag::GRAPH_INITIALIZER)
            .nth(index)
            .ok_or_else(|| bad(format!("no initializer at index {index}")))?;
        parse_initializer(raw)
    }

    /// Number of nodes and the op types of the first `n`.
    pub fn node_ops(&self, n: usize) -> Result<(usize, Vec<String>)> {
        let count = self.graph.bytes(tag::GRAPH_NODE).count();
        let ops = self
            .graph
            .bytes(tag::GRAPH_NODE)
            .take(n)
            .map(|b| Ok(Message::parse(b)?.string(tag::NODE_OP)?.unwrap_or_default()))
            .collect::<Result<_>>()?;
        Ok((count, ops))
    }

    /// Rewrites the shapes of graph inputs/outputs named in `shapes` and
    /// returns the new model bytes; every other byte of the model is kept.
    ///
    /// This is how a model exported with a fixed input size (CenterFace's
    /// 10×3×32×32) is made to accept frames of any size.
    pub fn with_io_shapes(&self, shapes: &[(&str, Vec<Dim>)]) -> Result<Vec<u8>> {
        let mut graph = self.graph.clone();
        let mut seen = Vec::new();
        for number in [tag::GRAPH_INPUT, tag::GRAPH_OUTPUT] {
            graph.edit_each(number, |vi_bytes| {
                let name = Message::parse(vi_bytes)?
                    .string(tag::VI_NAME)?
                    .unwrap_or_default();
                let Some((_, dims)) = shapes.iter().find(|(n, _)| *n == name) else {
                    return Ok(None);
                };
                seen.push(name);
                Ok(Some(rewrite_value_info_shape(vi_bytes, dims)?))
            })?;
        }
        if let Some((missing, _)) = shapes.iter().find(|(n, _)| !seen.iter().any(|s| s == n)) {
            return Err(bad(format!("no graph input or output named {missing}")));
        }
        let mut model = self.model.clone();
        let graph_bytes = graph.encode();
        for f in model
            .fields
            .iter_mut()
            .filter(|f| f.number == tag::MODEL_GRAPH)
        {
            f.value = Value::Bytes(Cow::Owned(graph_bytes.clone()));
        }
        Ok(model.encode())
    }
}

fn encode_dims(dims: &[Dim]) -> Vec<u8> {
    let mut shape = Message::default();
    for d in dims {
        let mut dm = Message::default();
        match d {
            Dim::Fixed(v) => {
                dm.push_varint(tag::DIM_VALUE, *v as u64);
            }
            Dim::Symbolic(p) => {
                dm.push_bytes(tag::DIM_PARAM, p.as_bytes());
            }
            Dim::Unknown => {}
        }
        shape.push_bytes(tag::SHAPE_DIM, dm.encode());
    }
    shape.encode()
}

fn rewrite_value_info_shape(vi_bytes: &[u8], dims: &[Dim]) -> Result<Vec<u8>> {
    let mut vi = Message::parse(vi_bytes)?;
    let mut found = false;
    vi.edit_each(tag::VI_TYPE, |ty| {
        let mut ty = Message::parse(ty)?;
        ty.edit_each(tag::TYPE_TENSOR, |tt| {
            let mut tt = Message::parse(tt)?;
            tt.fields.retain(|f| f.number != tag::TENSOR_TYPE_SHAPE);
            tt.push_bytes(tag::TENSOR_TYPE_SHAPE, encode_dims(dims));
            found = true;
            Ok(Some(tt.encode()))
        })?;
        Ok(Some(ty.encode()))
    })?;
    if !found {
        return Err(bad("value has no tensor type to reshape"));
    }
    Ok(vi.encode())
}

// ---------------------------------------------------------------------------
// Building small models (synthetic stand-ins with real signatures, tests)
// ---------------------------------------------------------------------------

/// A node attribute for [`ModelBuilder`].
#[derive(Debug, Clone)]
pub enum Attr {
    /// Integer.
    Int(i64),
    /// Float.
    Float(f32),
    /// Integer list.
    Ints(Vec<i64>),
    /// Float list.
    Floats(Vec<f32>),
    /// A float tensor (shape, values), e.g. for `Constant`.
    Tensor(Vec<i64>, Vec<f32>),
    /// A string (`Resize`'s `mode`).
    Str(String),
}

/// Builds small ONNX models: inputs, outputs, float initializers and nodes.
#[derive(Debug, Default, Clone)]
pub struct ModelBuilder {
    graph: Message<'static>,
    opset: i64,
}

fn encode_value_info(name: &str, elem: i32, dims: &[Dim]) -> Vec<u8> {
    let mut tt = Message::default();
    tt.push_varint(tag::TENSOR_TYPE_ELEM, elem as u64);
    tt.push_bytes(tag::TENSOR_TYPE_SHAPE, encode_dims(dims));
    let mut ty = Message::default();
    ty.push_bytes(tag::TYPE_TENSOR, tt.encode());
    let mut vi = Message::default();
    vi.push_bytes(tag::VI_NAME, name.as_bytes());
    vi.push_bytes(tag::VI_TYPE, ty.encode());
    vi.encode()
}

fn encode_tensor(name: &str, dims: &[i64], data: &[f32]) -> Vec<u8> {
    let mut t = Message::default();
    for d in dims {
        t.push_varint(tag::TENSOR_DIMS, *d as u64);
    }
    t.push_varint(tag::TENSOR_DATA_TYPE, dtype::FLOAT as u64);
    t.push_bytes(tag::TENSOR_NAME, name.as_bytes());
    t.push_bytes(
        tag::TENSOR_RAW,
        data.iter()
            .flat_map(|v| v.to_le_bytes())
            .collect::<Vec<u8>>(),
    );
    t.encode()
}

impl ModelBuilder {
    /// A new graph named `name` for the default ONNX domain at `opset`.
    pub fn new(name: &str, opset: i64) -> Self {
        let mut graph = Message::default();
        graph.push_bytes(tag::GRAPH_NAME, name.as_bytes());
        Self { graph, opset }
    }

    /// Declares a float32 graph input.
    pub fn input(mut self, name: &str, dims: &[Dim]) -> Self {
        self.graph.push_bytes(
            tag::GRAPH_INPUT,
            encode_value_info(name, dtype::FLOAT, dims),
        );
        self
    }

    /// Declares a float32 graph output.
    pub fn output(mut self, name: &str, dims: &[Dim]) -> Self {
        self.graph.push_bytes(
            tag::GRAPH_OUTPUT,
            encode_value_info(name, dtype::FLOAT, dims),
        );
        self
    }

    /// Adds a float32 initializer.
    pub fn initializer(mut self, name: &str, dims: &[i64], data: &[f32]) -> Self {
        self.graph
            .push_bytes(tag::GRAPH_INITIALIZER, encode_tensor(name, dims, data));
        self
    }

    /// Adds an int64 initializer (shapes, indices).
    pub fn initializer_i64(mut self, name: &str, dims: &[i64], data: &[i64]) -> Self {
        let mut t = Message::default();
        for d in dims {
            t.push_varint(tag::TENSOR_DIMS, *d as u64);
        }
        t.push_varint(tag::TENSOR_DATA_TYPE, dtype::INT64 as u64);
        t.push_bytes(tag::TENSOR_NAME, name.as_bytes());
        t.push_bytes(
            tag::TENSOR_RAW,
            data.iter()
                .flat_map(|v| v.to_le_bytes())
                .collect::<Vec<u8>>(),
        );
        self.graph.push_bytes(tag::GRAPH_INITIALIZER, t.encode());
        self
    }

    /// Adds a node.
    pub fn node(
        mut self,
        op: &str,
        inputs: &[&str],
        outputs: &[&str],
        attrs: &[(&str, Attr)],
    ) -> Self {
        let mut n = Message::default();
        for i in inputs {
            n.push_bytes(tag::NODE_INPUT, i.as_bytes());
        }
        for o in outputs {
            n.push_bytes(tag::NODE_OUTPUT, o.as_bytes());
        }
        n.push_bytes(
            tag::NODE_NAME,
            format!("{op}_{}", self.graph.fields.len()).into_bytes(),
        );
        n.push_bytes(tag::NODE_OP, op.as_bytes());
        for (name, a) in attrs {
            let mut m = Message::default();
            m.push_bytes(tag::ATTR_NAME, name.as_bytes());
            match a {
                Attr::Int(v) => {
                    m.push_varint(tag::ATTR_I, *v as u64)
                        .push_varint(tag::ATTR_TYPE, 2);
                }
                Attr::Float(v) => {
                    m.fields.push(Field {
                        number: tag::ATTR_F,
                        value: Value::Fixed32(v.to_bits()),
                    });
                    m.push_varint(tag::ATTR_TYPE, 1);
                }
                Attr::Ints(v) => {
                    for x in v {
                        m.push_varint(tag::ATTR_INTS, *x as u64);
                    }
                    m.push_varint(tag::ATTR_TYPE, 7);
                }
                Attr::Floats(v) => {
                    for x in v {
                        m.fields.push(Field {
                            number: tag::ATTR_FLOATS,
                            value: Value::Fixed32(x.to_bits()),
                        });
                    }
                    m.push_varint(tag::ATTR_TYPE, 6);
                }
                Attr::Str(v) => {
                    m.push_bytes(tag::ATTR_S, v.as_bytes())
                        .push_varint(tag::ATTR_TYPE, 3);
                }
                Attr::Tensor(dims, data) => {
                    m.push_bytes(tag::ATTR_T, encode_tensor(name, dims, data))
                        .push_varint(tag::ATTR_TYPE, 4);
                }
            }
            n.push_bytes(tag::NODE_ATTR, m.encode());
        }
        self.graph.push_bytes(tag::GRAPH_NODE, n.encode());
        self
    }

    /// Serializes the model (IR version 8).
    pub fn build(&self) -> Vec<u8> {
        let mut opset = Message::default();
        opset
            .push_bytes(tag::OPSET_DOMAIN, Vec::new())
            .push_varint(tag::OPSET_VERSION, self.opset as u64);
        let mut model = Message::default();
        model
            .push_varint(tag::MODEL_IR_VERSION, 8)
            .push_bytes(tag::MODEL_PRODUCER, "camshow-deepfaker".as_bytes())
            .push_bytes(tag::MODEL_GRAPH, self.graph.encode())
            .push_bytes(tag::MODEL_OPSET, opset.encode());
        model.encode()
    }
}

/// Shorthand for a list of fixed dims.
pub fn fixed(dims: &[i64]) -> Vec<Dim> {
    dims.iter().map(|&d| Dim::Fixed(d)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the fuzz harness: dimensions whose product overflows were
    /// multiplied unchecked.
    #[test]
    fn an_initializer_with_an_impossible_shape_is_an_error() {
        let max = [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F];
        let mut t = vec![0x08];
        t.extend(max);
        t.push(0x08);
        t.extend(max);
        t.extend([0x10, 0x01]);
        let e = parse_initializer(&t).unwrap_err().to_string();
        assert!(e.contains("impossible shape"), "{e}");
        // A negative dimension too.
        let neg = [
            0x08, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01, 0x10, 0x01,
        ];
        assert!(parse_initializer(&neg).is_err());
    }

    fn sample() -> Vec<u8> {
        ModelBuilder::new("g", 17)
            .input("x", &[Dim::Fixed(1), Dim::Fixed(4)])
            .initializer("w", &[4], &[1.0, 2.0, 3.0, 4.0])
            .initializer("emap", &[2, 2], &[0.5, -1.5, 2.25, 8.0])
            .node("Mul", &["x", "w"], &["y"], &[])
            .output("y", &[Dim::Fixed(1), Dim::Fixed(4)])
            .build()
    }

    #[test]
    fn round_trip_is_lossless() {
        let bytes = sample();
        let msg = Message::parse(&bytes).unwrap();
        assert_eq!(msg.encode(), bytes);
    }

    #[test]
    fn reads_signature_and_initializers() {
        let bytes = sample();
        let m = OnnxModel::parse(&bytes).unwrap();
        assert_eq!(m.ir_version(), 8);
        assert_eq!(m.opsets().unwrap(), vec![(String::new(), 17)]);
        let inputs = m.inputs().unwrap();
        assert_eq!(inputs.len(), 1);
        assert_eq!(inputs[0].name, "x");
        assert_eq!(inputs[0].dims, fixed(&[1, 4]));
        assert_eq!(m.initializer_count().unwrap(), 2);
        let last = m.initializer(1).unwrap();
        assert_eq!(last.name, "emap");
        assert_eq!(last.dims, vec![2, 2]);
        assert_eq!(last.data, vec![0.5, -1.5, 2.25, 8.0]);
        assert!(m.initializer(2).is_err());
    }

    #[test]
    fn rewrites_dims_and_keeps_everything_else() {
        let bytes = sample();
        let m = OnnxModel::parse(&bytes).unwrap();
        let sym = vec![Dim::Symbolic("B".into()), Dim::Fixed(4)];
        let out = m
            .with_io_shapes(&[("x", sym.clone()), ("y", sym.clone())])
            .unwrap();
        let m2 = OnnxModel::parse(&out).unwrap();
        assert_eq!(m2.inputs().unwrap()[0].dims, sym);
        assert_eq!(m2.outputs().unwrap()[0].dims, sym);
        assert_eq!(m2.initializer(1).unwrap().data, vec![0.5, -1.5, 2.25, 8.0]);
        assert!(m.with_io_shapes(&[("nope", sym)]).is_err());
    }

    #[test]
    fn rejects_garbage_without_panicking() {
        for junk in [
            &b""[..],
            b"\xff\xff\xff",
            b"\x0a\x7f",
            b"hello world",
            &[0x08; 64],
        ] {
            assert!(OnnxModel::parse(junk).is_err(), "{junk:?}");
        }
        let bytes = sample();
        for cut in [1, 7, bytes.len() / 2, bytes.len() - 1] {
            assert!(OnnxModel::parse(&bytes[..cut]).is_err() || cut == bytes.len());
        }
    }

    #[test]
    fn half_floats_convert() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x0000), 0.0);
        assert!((f16_to_f32(0x0001) - 5.960_464_5e-8).abs() < 1e-12);
        assert_eq!(f16_to_f32(0x7c00), f32::INFINITY);
    }
}
