//! The serializer: a serde `Serializer` that writes a row into a [`Tape`] of
//! events, the way `serde_json::to_value` would build a `Value` from it
//! (see serde_json's `value/ser.rs`), for
//! [`BlockEncoder::push_serialize`](super::BlockEncoder::push_serialize).
//! Depends on no private name of serde_json.

use serde_json::Value;

use super::encoder::Leaf;
use super::format::BlockError;

/// The buffers of [`BlockEncoder::push_serialize`], reused from row to row.
pub(super) struct Scratch {
    /// The row, serialized.
    pub(super) tape: Tape,
    /// The fast path's leaves: (column, tape position).
    pub(super) resolved: Vec<(usize, usize)>,
    /// The slow path's object entries: (key position, value position) in the
    /// tape, a stack shared by the nested objects.
    pub(super) entries: Vec<(usize, usize)>,
}

/// The most tape events [`Scratch`] keeps between rows (a report has some
/// 400).
pub(super) const SCRATCH_EVENTS: usize = 1 << 16;
/// The most arena bytes [`Scratch`] keeps between rows.
pub(super) const SCRATCH_BYTES: usize = 1 << 20;

impl Scratch {
    /// Empty buffers.
    pub(super) const fn new() -> Self {
        Self {
            tape: Tape {
                events: Vec::new(),
                arena: String::new(),
            },
            resolved: Vec::new(),
            entries: Vec::new(),
        }
    }

    /// Lets go of buffers an exceptionally large row grew.
    pub(super) fn trim(&mut self) {
        if self.tape.events.capacity() > SCRATCH_EVENTS
            || self.tape.arena.capacity() > SCRATCH_BYTES
            || self.resolved.capacity() > SCRATCH_EVENTS
            || self.entries.capacity() > SCRATCH_EVENTS
        {
            *self = Self::new();
        }
    }
}

thread_local! {
    /// The buffers of [`BlockEncoder::push_serialize`], shared by the
    /// encoders of a thread (a store keeps one open encoder per device).
    pub(super) static SCRATCH: std::cell::RefCell<Scratch> = const { std::cell::RefCell::new(Scratch::new()) };
}

/// Text in a [`Tape`]: a `'static` name (struct field, enum variant) or a
/// range of the tape's arena.
#[derive(Clone, Copy)]
pub(super) enum Text {
    /// A name known at compile time.
    Static(&'static str),
    /// `arena[start..end]`.
    Arena(usize, usize),
}

/// One step of a row serialized into a [`Tape`].
#[derive(Clone, Copy)]
pub(super) enum Event {
    /// `null`.
    Null,
    /// `false` or `true`.
    Bool(bool),
    /// A number serde_json would hold as an `i64`.
    Int(i64),
    /// A number serde_json would hold as a `u64`.
    Uint(u64),
    /// A finite float.
    Float(f64),
    /// A string.
    Str(Text),
    /// An array, up to the [`Event::End`] at the position it holds; its
    /// elements follow.
    Array(usize),
    /// An object, up to the [`Event::End`] at the position it holds; its
    /// entries follow as a [`Event::Key`] and a value each, in the order
    /// they were serialized, equal keys included.
    Object(usize),
    /// The end of an array or object.
    End,
    /// An object key.
    Key(Text),
}

/// A row as serialized: a flat list of events whose strings are in one
/// arena, both reused from row to row.
#[derive(Default)]
pub(super) struct Tape {
    /// The events, in serialization order.
    pub(super) events: Vec<Event>,
    /// The bytes of the strings and keys that are not `'static`.
    pub(super) arena: String,
}

impl Tape {
    /// The string `text` stands for.
    pub(super) fn text(&self, text: Text) -> &str {
        match text {
            Text::Static(text) => text,
            Text::Arena(start, end) => self.arena.get(start..end).unwrap_or_default(),
        }
    }

    /// The key at `at`, or `""` if there is none.
    pub(super) fn key(&self, at: usize) -> &str {
        match self.events.get(at) {
            Some(Event::Key(key)) => self.text(*key),
            _ => "",
        }
    }

    /// Where the value at `at` ends: the position after it.
    pub(super) fn after(&self, at: usize) -> usize {
        match self.events.get(at) {
            Some(Event::Array(end) | Event::Object(end)) => end.saturating_add(1),
            _ => at + 1,
        }
    }

    /// The value at `at` as a leaf, when it is a scalar or empty.
    pub(super) fn leaf(&self, at: usize) -> Option<Leaf<'_>> {
        Some(match *self.events.get(at)? {
            Event::Null => Leaf::Null,
            Event::Bool(b) => Leaf::Bool(b),
            Event::Int(int) => Leaf::Int(int),
            Event::Uint(uint) => Leaf::Uint(uint),
            Event::Float(x) => Leaf::Float(x),
            Event::Str(text) => Leaf::Str(self.text(text)),
            Event::Array(end) if end == at + 1 => Leaf::EmptyArray,
            Event::Object(end) if end == at + 1 => Leaf::EmptyObject,
            Event::Array(_) | Event::Object(_) | Event::End | Event::Key(_) => return None,
        })
    }

    /// Appends `text` to the arena.
    pub(super) fn push_str(&mut self, text: &str) -> Text {
        let start = self.arena.len();
        self.arena.push_str(text);
        Text::Arena(start, self.arena.len())
    }

    /// Appends what `value` displays as to the arena, as `to_string` would.
    pub(super) fn push_display<T: std::fmt::Display + ?Sized>(
        &mut self,
        value: &T,
    ) -> Result<Text, BlockError> {
        use std::fmt::Write;
        let start = self.arena.len();
        write!(self.arena, "{value}").map_err(|_| {
            BlockError::Serialize("a Display implementation returned an error".into())
        })?;
        Ok(Text::Arena(start, self.arena.len()))
    }

    /// Opens an array or object: `event` with its end to be set by
    /// [`close`](Self::close). Returns its position.
    pub(super) fn open(&mut self, event: Event) -> usize {
        self.events.push(event);
        self.events.len() - 1
    }

    /// Closes the array or object opened at `begin`.
    pub(super) fn close(&mut self, begin: usize) {
        let end = self.events.len();
        self.events.push(Event::End);
        if let Some(Event::Array(slot) | Event::Object(slot)) = self.events.get_mut(begin) {
            *slot = end;
        }
    }
}

impl serde::ser::Error for BlockError {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        Self::Serialize(msg.to_string())
    }
}

/// The error serde_json gives for a key that is not a string.
pub(super) fn key_must_be_a_string() -> BlockError {
    BlockError::Serialize("key must be a string".into())
}

/// The error serde_json gives for a number it cannot hold.
pub(super) fn number_out_of_range() -> BlockError {
    BlockError::Serialize("number out of range".into())
}

/// Serializes a value into a [`Tape`] the way `serde_json::to_value` builds
/// a `Value` (see serde_json's `value/ser.rs`).
pub(super) struct TapeSerializer<'t> {
    /// Where the events go.
    pub(super) tape: &'t mut Tape,
}

impl<'t> TapeSerializer<'t> {
    /// Records a scalar.
    fn event(self, event: Event) -> Result<(), BlockError> {
        self.tape.events.push(event);
        Ok(())
    }

    /// Opens an object with the single key `variant` (an enum variant,
    /// externally tagged); returns its position.
    fn open_variant(&mut self, variant: &'static str) -> usize {
        let outer = self.tape.open(Event::Object(usize::MAX));
        self.tape.events.push(Event::Key(Text::Static(variant)));
        outer
    }

    /// An array or object being serialized.
    fn compound(self, begin: usize, outer: Option<usize>) -> Compound<'t> {
        Compound {
            tape: self.tape,
            begin,
            outer,
            key_pending: false,
        }
    }
}

/// An array or object being serialized into a [`Tape`].
pub(super) struct Compound<'t> {
    /// Where the events go.
    tape: &'t mut Tape,
    /// Where the array or object opened.
    begin: usize,
    /// Where the object holding it as an enum variant opened.
    outer: Option<usize>,
    /// Whether a key waits for its value.
    key_pending: bool,
}

impl Compound<'_> {
    /// Serializes an element or a value.
    fn value<T: serde::Serialize + ?Sized>(&mut self, value: &T) -> Result<(), BlockError> {
        value.serialize(TapeSerializer { tape: self.tape })
    }

    /// Serializes an entry with a `'static` key (a struct field).
    fn field<T: serde::Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), BlockError> {
        self.tape.events.push(Event::Key(Text::Static(key)));
        self.value(value)
    }

    /// Closes the array or object, and the variant's object around it.
    fn close(self) -> Result<(), BlockError> {
        if self.key_pending {
            // serde_json drops a key that got no value.
            self.tape.events.pop();
        }
        self.tape.close(self.begin);
        if let Some(outer) = self.outer {
            self.tape.close(outer);
        }
        Ok(())
    }
}

impl serde::ser::SerializeSeq for Compound<'_> {
    type Ok = ();
    type Error = BlockError;

    fn serialize_element<T: serde::Serialize + ?Sized>(
        &mut self,
        value: &T,
    ) -> Result<(), BlockError> {
        self.value(value)
    }

    fn end(self) -> Result<(), BlockError> {
        self.close()
    }
}

impl serde::ser::SerializeTuple for Compound<'_> {
    type Ok = ();
    type Error = BlockError;

    fn serialize_element<T: serde::Serialize + ?Sized>(
        &mut self,
        value: &T,
    ) -> Result<(), BlockError> {
        self.value(value)
    }

    fn end(self) -> Result<(), BlockError> {
        self.close()
    }
}

impl serde::ser::SerializeTupleStruct for Compound<'_> {
    type Ok = ();
    type Error = BlockError;

    fn serialize_field<T: serde::Serialize + ?Sized>(
        &mut self,
        value: &T,
    ) -> Result<(), BlockError> {
        self.value(value)
    }

    fn end(self) -> Result<(), BlockError> {
        self.close()
    }
}

impl serde::ser::SerializeTupleVariant for Compound<'_> {
    type Ok = ();
    type Error = BlockError;

    fn serialize_field<T: serde::Serialize + ?Sized>(
        &mut self,
        value: &T,
    ) -> Result<(), BlockError> {
        self.value(value)
    }

    fn end(self) -> Result<(), BlockError> {
        self.close()
    }
}

impl serde::ser::SerializeMap for Compound<'_> {
    type Ok = ();
    type Error = BlockError;

    fn serialize_key<T: serde::Serialize + ?Sized>(&mut self, key: &T) -> Result<(), BlockError> {
        if self.key_pending {
            // serde_json replaces a key that got no value.
            self.tape.events.pop();
            self.key_pending = false;
        }
        key.serialize(KeySerializer { tape: self.tape })?;
        self.key_pending = true;
        Ok(())
    }

    fn serialize_value<T: serde::Serialize + ?Sized>(
        &mut self,
        value: &T,
    ) -> Result<(), BlockError> {
        if !self.key_pending {
            // serde_json panics here.
            return Err(BlockError::Serialize(
                "serialize_value called before serialize_key".into(),
            ));
        }
        self.key_pending = false;
        self.value(value)
    }

    fn end(self) -> Result<(), BlockError> {
        self.close()
    }
}

impl serde::ser::SerializeStructVariant for Compound<'_> {
    type Ok = ();
    type Error = BlockError;

    fn serialize_field<T: serde::Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), BlockError> {
        self.field(key, value)
    }

    fn end(self) -> Result<(), BlockError> {
        self.close()
    }
}

impl serde::ser::SerializeStruct for Compound<'_> {
    type Ok = ();
    type Error = BlockError;

    fn serialize_field<T: serde::Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), BlockError> {
        self.field(key, value)
    }

    fn end(self) -> Result<(), BlockError> {
        self.close()
    }
}

impl<'t> serde::Serializer for TapeSerializer<'t> {
    type Ok = ();
    type Error = BlockError;
    type SerializeSeq = Compound<'t>;
    type SerializeTuple = Compound<'t>;
    type SerializeTupleStruct = Compound<'t>;
    type SerializeTupleVariant = Compound<'t>;
    type SerializeMap = Compound<'t>;
    type SerializeStruct = Compound<'t>;
    type SerializeStructVariant = Compound<'t>;

    fn serialize_bool(self, v: bool) -> Result<(), BlockError> {
        self.event(Event::Bool(v))
    }

    fn serialize_i8(self, v: i8) -> Result<(), BlockError> {
        self.event(Event::Int(v.into()))
    }

    fn serialize_i16(self, v: i16) -> Result<(), BlockError> {
        self.event(Event::Int(v.into()))
    }

    fn serialize_i32(self, v: i32) -> Result<(), BlockError> {
        self.event(Event::Int(v.into()))
    }

    fn serialize_i64(self, v: i64) -> Result<(), BlockError> {
        self.event(Event::Int(v))
    }

    fn serialize_i128(self, v: i128) -> Result<(), BlockError> {
        // Like serde_json: a u64 if it fits, else an i64 if it fits.
        if let Ok(v) = u64::try_from(v) {
            self.event(Event::Uint(v))
        } else if let Ok(v) = i64::try_from(v) {
            self.event(Event::Int(v))
        } else {
            Err(number_out_of_range())
        }
    }

    fn serialize_u8(self, v: u8) -> Result<(), BlockError> {
        self.event(Event::Uint(v.into()))
    }

    fn serialize_u16(self, v: u16) -> Result<(), BlockError> {
        self.event(Event::Uint(v.into()))
    }

    fn serialize_u32(self, v: u32) -> Result<(), BlockError> {
        self.event(Event::Uint(v.into()))
    }

    fn serialize_u64(self, v: u64) -> Result<(), BlockError> {
        self.event(Event::Uint(v))
    }

    fn serialize_u128(self, v: u128) -> Result<(), BlockError> {
        let v = u64::try_from(v).map_err(|_| number_out_of_range())?;
        self.event(Event::Uint(v))
    }

    fn serialize_f32(self, v: f32) -> Result<(), BlockError> {
        // `Value::from(f32)`: `v as f64`, or null when not finite.
        self.serialize_f64(f64::from(v))
    }

    fn serialize_f64(self, v: f64) -> Result<(), BlockError> {
        // `Value::from(f64)`: null when not finite.
        self.event(if v.is_finite() {
            Event::Float(v)
        } else {
            Event::Null
        })
    }

    fn serialize_char(self, v: char) -> Result<(), BlockError> {
        let text = self.tape.push_str(v.encode_utf8(&mut [0; 4]));
        self.event(Event::Str(text))
    }

    fn serialize_str(self, v: &str) -> Result<(), BlockError> {
        let text = self.tape.push_str(v);
        self.event(Event::Str(text))
    }

    fn serialize_bytes(self, v: &[u8]) -> Result<(), BlockError> {
        let begin = self.tape.open(Event::Array(usize::MAX));
        self.tape
            .events
            .extend(v.iter().map(|&byte| Event::Uint(byte.into())));
        self.tape.close(begin);
        Ok(())
    }

    fn serialize_none(self) -> Result<(), BlockError> {
        self.event(Event::Null)
    }

    fn serialize_some<T: serde::Serialize + ?Sized>(self, value: &T) -> Result<(), BlockError> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<(), BlockError> {
        self.event(Event::Null)
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), BlockError> {
        self.event(Event::Null)
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _variant_index: u32,
        variant: &'static str,
    ) -> Result<(), BlockError> {
        self.event(Event::Str(Text::Static(variant)))
    }

    fn serialize_newtype_struct<T: serde::Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), BlockError> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: serde::Serialize + ?Sized>(
        mut self,
        _name: &'static str,
        _variant_index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), BlockError> {
        let outer = self.open_variant(variant);
        value.serialize(TapeSerializer { tape: self.tape })?;
        self.tape.close(outer);
        Ok(())
    }

    fn serialize_seq(self, _len: Option<usize>) -> Result<Compound<'t>, BlockError> {
        let begin = self.tape.open(Event::Array(usize::MAX));
        Ok(self.compound(begin, None))
    }

    fn serialize_tuple(self, _len: usize) -> Result<Compound<'t>, BlockError> {
        self.serialize_seq(None)
    }

    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Compound<'t>, BlockError> {
        self.serialize_seq(None)
    }

    fn serialize_tuple_variant(
        mut self,
        _name: &'static str,
        _variant_index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Compound<'t>, BlockError> {
        let outer = self.open_variant(variant);
        let begin = self.tape.open(Event::Array(usize::MAX));
        Ok(self.compound(begin, Some(outer)))
    }

    fn serialize_map(self, _len: Option<usize>) -> Result<Compound<'t>, BlockError> {
        let begin = self.tape.open(Event::Object(usize::MAX));
        Ok(self.compound(begin, None))
    }

    /// Every struct is an object of its fields, whatever its name: also
    /// serde_json's private marker structs (`RawValue`, and `Number` under
    /// `arbitrary_precision`), which `serde_json::to_value` turns into
    /// something else. Rows are `Report`s and rollup rows, which hold none,
    /// so what is stored depends on the row's `Serialize` alone, never on
    /// serde_json's private names or on which of its features a build turns
    /// on.
    fn serialize_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Compound<'t>, BlockError> {
        let begin = self.tape.open(Event::Object(usize::MAX));
        Ok(self.compound(begin, None))
    }

    fn serialize_struct_variant(
        mut self,
        _name: &'static str,
        _variant_index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Compound<'t>, BlockError> {
        let outer = self.open_variant(variant);
        let begin = self.tape.open(Event::Object(usize::MAX));
        Ok(self.compound(begin, Some(outer)))
    }

    fn collect_str<T: std::fmt::Display + ?Sized>(self, value: &T) -> Result<(), BlockError> {
        let text = self.tape.push_display(value)?;
        self.event(Event::Str(text))
    }
}

/// A map with one float key, to have serde_json's map key serializer
/// format the key.
pub(super) struct FloatKey<F>(F);

impl<F: serde::Serialize> serde::Serialize for FloatKey<F> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry(&self.0, &())?;
        map.end()
    }
}

/// Serializes a map key into a [`Tape`] as serde_json's `MapKeySerializer`
/// turns it into a `String`.
pub(super) struct KeySerializer<'t> {
    /// Where the key goes.
    tape: &'t mut Tape,
}

impl KeySerializer<'_> {
    /// Records the key.
    fn key(self, text: Text) -> Result<(), BlockError> {
        self.tape.events.push(Event::Key(text));
        Ok(())
    }

    /// Records an integer key, in decimal like serde_json's `itoa`.
    fn display<T: std::fmt::Display>(self, v: T) -> Result<(), BlockError> {
        let text = self.tape.push_display(&v)?;
        self.key(text)
    }

    /// Records a float key, formatted by serde_json itself (rare: a map
    /// built for it).
    fn float<F: serde::Serialize>(self, v: F) -> Result<(), BlockError> {
        let Value::Object(map) =
            serde_json::to_value(FloatKey(v)).map_err(|e| BlockError::Serialize(e.to_string()))?
        else {
            return Err(key_must_be_a_string());
        };
        let key = map.keys().next().ok_or_else(key_must_be_a_string)?;
        let text = self.tape.push_str(key);
        self.key(text)
    }
}

impl serde::Serializer for KeySerializer<'_> {
    type Ok = ();
    type Error = BlockError;
    type SerializeSeq = serde::ser::Impossible<(), BlockError>;
    type SerializeTuple = serde::ser::Impossible<(), BlockError>;
    type SerializeTupleStruct = serde::ser::Impossible<(), BlockError>;
    type SerializeTupleVariant = serde::ser::Impossible<(), BlockError>;
    type SerializeMap = serde::ser::Impossible<(), BlockError>;
    type SerializeStruct = serde::ser::Impossible<(), BlockError>;
    type SerializeStructVariant = serde::ser::Impossible<(), BlockError>;

    fn serialize_bool(self, v: bool) -> Result<(), BlockError> {
        self.key(Text::Static(if v { "true" } else { "false" }))
    }

    fn serialize_i8(self, v: i8) -> Result<(), BlockError> {
        self.display(v)
    }

    fn serialize_i16(self, v: i16) -> Result<(), BlockError> {
        self.display(v)
    }

    fn serialize_i32(self, v: i32) -> Result<(), BlockError> {
        self.display(v)
    }

    fn serialize_i64(self, v: i64) -> Result<(), BlockError> {
        self.display(v)
    }

    fn serialize_i128(self, v: i128) -> Result<(), BlockError> {
        self.display(v)
    }

    fn serialize_u8(self, v: u8) -> Result<(), BlockError> {
        self.display(v)
    }

    fn serialize_u16(self, v: u16) -> Result<(), BlockError> {
        self.display(v)
    }

    fn serialize_u32(self, v: u32) -> Result<(), BlockError> {
        self.display(v)
    }

    fn serialize_u64(self, v: u64) -> Result<(), BlockError> {
        self.display(v)
    }

    fn serialize_u128(self, v: u128) -> Result<(), BlockError> {
        self.display(v)
    }

    fn serialize_f32(self, v: f32) -> Result<(), BlockError> {
        self.float(v)
    }

    fn serialize_f64(self, v: f64) -> Result<(), BlockError> {
        self.float(v)
    }

    fn serialize_char(self, v: char) -> Result<(), BlockError> {
        let text = self.tape.push_str(v.encode_utf8(&mut [0; 4]));
        self.key(text)
    }

    fn serialize_str(self, v: &str) -> Result<(), BlockError> {
        let text = self.tape.push_str(v);
        self.key(text)
    }

    fn serialize_bytes(self, _v: &[u8]) -> Result<(), BlockError> {
        Err(key_must_be_a_string())
    }

    fn serialize_none(self) -> Result<(), BlockError> {
        Err(key_must_be_a_string())
    }

    fn serialize_some<T: serde::Serialize + ?Sized>(self, _value: &T) -> Result<(), BlockError> {
        Err(key_must_be_a_string())
    }

    fn serialize_unit(self) -> Result<(), BlockError> {
        Err(key_must_be_a_string())
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), BlockError> {
        Err(key_must_be_a_string())
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _variant_index: u32,
        variant: &'static str,
    ) -> Result<(), BlockError> {
        self.key(Text::Static(variant))
    }

    fn serialize_newtype_struct<T: serde::Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), BlockError> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: serde::Serialize + ?Sized>(
        self,
        _name: &'static str,
        _variant_index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result<(), BlockError> {
        Err(key_must_be_a_string())
    }

    fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq, BlockError> {
        Err(key_must_be_a_string())
    }

    fn serialize_tuple(self, _len: usize) -> Result<Self::SerializeTuple, BlockError> {
        Err(key_must_be_a_string())
    }

    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleStruct, BlockError> {
        Err(key_must_be_a_string())
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _variant_index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, BlockError> {
        Err(key_must_be_a_string())
    }

    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap, BlockError> {
        Err(key_must_be_a_string())
    }

    fn serialize_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStruct, BlockError> {
        Err(key_must_be_a_string())
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _variant_index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, BlockError> {
        Err(key_must_be_a_string())
    }

    fn collect_str<T: std::fmt::Display + ?Sized>(self, value: &T) -> Result<(), BlockError> {
        let text = self.tape.push_display(value)?;
        self.key(text)
    }
}
