//! Small declarative macros shared by every wire module.
//!
//! * `enum_with_unknown!` declares a code enum that keeps unknown values (smoltcp style), with
//!   `From` both ways, `name()`, `Display`, `defmt::Format` and a [`Value`](crate::Value).
//! * `bit_flags!` declares a bit-set newtype with named constants, set operations, `Display`
//!   (`A|B|0x200`), `Debug` and `defmt::Format`.

macro_rules! enum_with_unknown {
    (
        $(#[$enum_attr:meta])*
        pub enum $name:ident($ty:ty) {
            $(
                $(#[$variant_attr:meta])*
                $variant:ident = $value:expr => $text:literal
            ),+ $(,)?
        }
    ) => {
        $(#[$enum_attr])*
        #[derive(Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Clone, Copy)]
        pub enum $name {
            $( $(#[$variant_attr])* $variant, )+
            /// A value without a name in this crate; kept so it survives into logs.
            Unknown($ty),
        }

        impl ::core::convert::From<$ty> for $name {
            #[allow(unreachable_patterns)]
            #[inline]
            fn from(value: $ty) -> Self {
                match value {
                    $( v if v == $value => $name::$variant, )+
                    other => $name::Unknown(other),
                }
            }
        }

        impl ::core::convert::From<$name> for $ty {
            #[inline]
            fn from(value: $name) -> Self {
                match value {
                    $( $name::$variant => $value, )+
                    $name::Unknown(other) => other,
                }
            }
        }

        impl $name {
            /// The spec name of this value, `None` for an unknown value.
            pub const fn name(&self) -> Option<&'static str> {
                match self {
                    $( $name::$variant => Some($text), )+
                    $name::Unknown(_) => None,
                }
            }

            /// The raw wire value.
            pub fn raw(self) -> $ty {
                <$ty>::from(self)
            }

            /// This value for a [`FieldVisitor`](crate::FieldVisitor).
            pub fn to_value(self) -> $crate::Value<'static> {
                $crate::Value::Enum { name: self.name(), raw: u32::from(self.raw()) }
            }
        }

        impl ::core::fmt::Display for $name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                match self.name() {
                    Some(n) => f.write_str(n),
                    None => write!(f, "UNKNOWN({:#x})", self.raw()),
                }
            }
        }

        #[cfg(feature = "defmt")]
        impl defmt::Format for $name {
            fn format(&self, f: defmt::Formatter<'_>) {
                match self.name() {
                    Some(n) => defmt::write!(f, "{=str}", n),
                    None => defmt::write!(f, "UNKNOWN({:#x})", self.raw()),
                }
            }
        }
    };
}

macro_rules! bit_flags {
    (
        $(#[$attr:meta])*
        pub struct $name:ident: $ty:ty {
            $(
                $(#[$flag_attr:meta])*
                const $flag:ident = $value:expr;
            )*
        }
    ) => {
        $(#[$attr])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
        pub struct $name($ty);

        #[allow(dead_code)]
        impl $name {
            $(
                $(#[$flag_attr])*
                pub const $flag: $name = $name($value);
            )*

            /// Every named flag with its bits, in declaration order (aliases included).
            pub const NAMES: &'static [(&'static str, $ty)] = &[ $( (stringify!($flag), $value) ),* ];

            /// The union of every named bit.
            pub const KNOWN_BITS: $ty = 0 $( | $value )*;

            /// No bit set.
            pub const fn empty() -> Self {
                $name(0)
            }

            /// All bits kept as given, named or not.
            pub const fn from_bits_retain(bits: $ty) -> Self {
                $name(bits)
            }

            /// The raw bits.
            pub const fn bits(self) -> $ty {
                self.0
            }

            /// `true` if every bit of `other` is set in `self`.
            pub const fn contains(self, other: Self) -> bool {
                self.0 & other.0 == other.0
            }

            /// `true` if any bit of `other` is set in `self`.
            pub const fn intersects(self, other: Self) -> bool {
                self.0 & other.0 != 0
            }

            /// `true` if no bit is set.
            pub const fn is_empty(self) -> bool {
                self.0 == 0
            }

            /// `self | other`.
            pub const fn union(self, other: Self) -> Self {
                $name(self.0 | other.0)
            }

            /// `self & !other`.
            pub const fn difference(self, other: Self) -> Self {
                $name(self.0 & !other.0)
            }

            /// Bits set in `self` that have no name.
            pub const fn unknown_bits(self) -> $ty {
                self.0 & !Self::KNOWN_BITS
            }

            /// Sets the bits of `other`.
            pub fn insert(&mut self, other: Self) {
                self.0 |= other.0;
            }

            /// Clears the bits of `other`.
            pub fn remove(&mut self, other: Self) {
                self.0 &= !other.0;
            }

            /// Sets or clears the bits of `other`.
            pub fn set(&mut self, other: Self, on: bool) {
                if on { self.insert(other) } else { self.remove(other) }
            }
        }

        impl ::core::ops::BitOr for $name {
            type Output = Self;
            fn bitor(self, rhs: Self) -> Self {
                $name(self.0 | rhs.0)
            }
        }

        impl ::core::ops::BitOrAssign for $name {
            fn bitor_assign(&mut self, rhs: Self) {
                self.0 |= rhs.0;
            }
        }

        impl ::core::ops::BitAnd for $name {
            type Output = Self;
            fn bitand(self, rhs: Self) -> Self {
                $name(self.0 & rhs.0)
            }
        }

        impl ::core::fmt::Display for $name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                let mut rest = self.0;
                let mut first = true;
                for &(name, bits) in Self::NAMES {
                    if bits != 0 && rest & bits == bits {
                        if !first {
                            f.write_str("|")?;
                        }
                        f.write_str(name)?;
                        rest &= !bits;
                        first = false;
                    }
                }
                if rest != 0 {
                    if !first {
                        f.write_str("|")?;
                    }
                    write!(f, "{:#x}", rest)?;
                    first = false;
                }
                if first {
                    f.write_str("0")?;
                }
                Ok(())
            }
        }

        impl ::core::fmt::Debug for $name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                write!(f, "{}({})", stringify!($name), self)
            }
        }

        #[cfg(feature = "defmt")]
        impl defmt::Format for $name {
            fn format(&self, f: defmt::Formatter<'_>) {
                let mut rest = self.0;
                let mut first = true;
                for &(name, bits) in Self::NAMES {
                    if bits != 0 && rest & bits == bits {
                        if !first {
                            defmt::write!(f, "|");
                        }
                        defmt::write!(f, "{=str}", name);
                        rest &= !bits;
                        first = false;
                    }
                }
                if rest != 0 {
                    if !first {
                        defmt::write!(f, "|");
                    }
                    defmt::write!(f, "{:#x}", rest);
                    first = false;
                }
                if first {
                    defmt::write!(f, "0");
                }
            }
        }
    };
}

/// Getter + setter pairs for a view `struct V<T: AsRef<[u8]>> { buffer: T }`, used inside
/// `impl<T: AsRef<[u8]>> V<T> { ... }`. Each line: `get, set, byte offset, kind`, where kind
/// is one of `u8`, `le16`, `le32`, `le64`, `be16`, `be32`, `wwn`, `lun`, `port_be`,
/// `port_le`, or `le16 as Newtype` / `le32 as Newtype` / `be16 as Newtype` (a tuple struct).
macro_rules! accessors {
    ($( $(#[$m:meta])* $get:ident, $set:ident, $at:expr, $kind:ident $(as $nt:ident)?; )*) => {
        $( accessors!(@one $(#[$m])* $get, $set, $at, $kind $(as $nt)?); )*
    };
    (@one $(#[$m:meta])* $get:ident, $set:ident, $at:expr, u8) => {
        $(#[$m])*
        pub fn $get(&self) -> u8 { self.buffer.as_ref()[$at] }
        #[doc = concat!("Sets [`", stringify!($get), "`](Self::", stringify!($get), ").")]
        pub fn $set(&mut self, v: u8) where T: AsMut<[u8]> { self.buffer.as_mut()[$at] = v }
    };
    (@one $(#[$m:meta])* $get:ident, $set:ident, $at:expr, le16) => {
        $(#[$m])*
        pub fn $get(&self) -> u16 { $crate::bytes::le16(self.buffer.as_ref(), $at) }
        #[doc = concat!("Sets [`", stringify!($get), "`](Self::", stringify!($get), ").")]
        pub fn $set(&mut self, v: u16) where T: AsMut<[u8]> { $crate::bytes::set_le16(self.buffer.as_mut(), $at, v) }
    };
    (@one $(#[$m:meta])* $get:ident, $set:ident, $at:expr, le32) => {
        $(#[$m])*
        pub fn $get(&self) -> u32 { $crate::bytes::le32(self.buffer.as_ref(), $at) }
        #[doc = concat!("Sets [`", stringify!($get), "`](Self::", stringify!($get), ").")]
        pub fn $set(&mut self, v: u32) where T: AsMut<[u8]> { $crate::bytes::set_le32(self.buffer.as_mut(), $at, v) }
    };
    (@one $(#[$m:meta])* $get:ident, $set:ident, $at:expr, le64) => {
        $(#[$m])*
        pub fn $get(&self) -> u64 { $crate::bytes::le64(self.buffer.as_ref(), $at) }
        #[doc = concat!("Sets [`", stringify!($get), "`](Self::", stringify!($get), ").")]
        pub fn $set(&mut self, v: u64) where T: AsMut<[u8]> { $crate::bytes::set_le64(self.buffer.as_mut(), $at, v) }
    };
    (@one $(#[$m:meta])* $get:ident, $set:ident, $at:expr, be16) => {
        $(#[$m])*
        pub fn $get(&self) -> u16 { $crate::bytes::be16(self.buffer.as_ref(), $at) }
        #[doc = concat!("Sets [`", stringify!($get), "`](Self::", stringify!($get), ").")]
        pub fn $set(&mut self, v: u16) where T: AsMut<[u8]> { $crate::bytes::set_be16(self.buffer.as_mut(), $at, v) }
    };
    (@one $(#[$m:meta])* $get:ident, $set:ident, $at:expr, be32) => {
        $(#[$m])*
        pub fn $get(&self) -> u32 { $crate::bytes::be32(self.buffer.as_ref(), $at) }
        #[doc = concat!("Sets [`", stringify!($get), "`](Self::", stringify!($get), ").")]
        pub fn $set(&mut self, v: u32) where T: AsMut<[u8]> { $crate::bytes::set_be32(self.buffer.as_mut(), $at, v) }
    };
    (@one $(#[$m:meta])* $get:ident, $set:ident, $at:expr, wwn) => {
        $(#[$m])*
        pub fn $get(&self) -> $crate::Wwn { $crate::Wwn($crate::bytes::array(self.buffer.as_ref(), $at)) }
        #[doc = concat!("Sets [`", stringify!($get), "`](Self::", stringify!($get), ").")]
        pub fn $set(&mut self, v: $crate::Wwn) where T: AsMut<[u8]> { self.buffer.as_mut()[$at..$at + 8].copy_from_slice(&v.0) }
    };
    (@one $(#[$m:meta])* $get:ident, $set:ident, $at:expr, lun) => {
        $(#[$m])*
        pub fn $get(&self) -> $crate::Lun { $crate::Lun($crate::bytes::array(self.buffer.as_ref(), $at)) }
        #[doc = concat!("Sets [`", stringify!($get), "`](Self::", stringify!($get), ").")]
        pub fn $set(&mut self, v: $crate::Lun) where T: AsMut<[u8]> { self.buffer.as_mut()[$at..$at + 8].copy_from_slice(&v.0) }
    };
    (@one $(#[$m:meta])* $get:ident, $set:ident, $at:expr, port_be) => {
        $(#[$m])*
        pub fn $get(&self) -> $crate::PortId { $crate::PortId::from_be_bytes($crate::bytes::array(self.buffer.as_ref(), $at)) }
        #[doc = concat!("Sets [`", stringify!($get), "`](Self::", stringify!($get), ").")]
        pub fn $set(&mut self, v: $crate::PortId) where T: AsMut<[u8]> { self.buffer.as_mut()[$at..$at + 3].copy_from_slice(&v.to_be_bytes()) }
    };
    (@one $(#[$m:meta])* $get:ident, $set:ident, $at:expr, port_le) => {
        $(#[$m])*
        pub fn $get(&self) -> $crate::PortId { $crate::PortId::from_le_bytes($crate::bytes::array(self.buffer.as_ref(), $at)) }
        #[doc = concat!("Sets [`", stringify!($get), "`](Self::", stringify!($get), ").")]
        pub fn $set(&mut self, v: $crate::PortId) where T: AsMut<[u8]> { self.buffer.as_mut()[$at..$at + 3].copy_from_slice(&v.to_le_bytes()) }
    };
    (@one $(#[$m:meta])* $get:ident, $set:ident, $at:expr, le16 as $nt:ident) => {
        $(#[$m])*
        pub fn $get(&self) -> $nt { $nt($crate::bytes::le16(self.buffer.as_ref(), $at)) }
        #[doc = concat!("Sets [`", stringify!($get), "`](Self::", stringify!($get), ").")]
        pub fn $set(&mut self, v: $nt) where T: AsMut<[u8]> { $crate::bytes::set_le16(self.buffer.as_mut(), $at, v.0) }
    };
    (@one $(#[$m:meta])* $get:ident, $set:ident, $at:expr, be16 as $nt:ident) => {
        $(#[$m])*
        pub fn $get(&self) -> $nt { $nt($crate::bytes::be16(self.buffer.as_ref(), $at)) }
        #[doc = concat!("Sets [`", stringify!($get), "`](Self::", stringify!($get), ").")]
        pub fn $set(&mut self, v: $nt) where T: AsMut<[u8]> { $crate::bytes::set_be16(self.buffer.as_mut(), $at, v.0) }
    };
    (@one $(#[$m:meta])* $get:ident, $set:ident, $at:expr, le32 as $nt:ident) => {
        $(#[$m])*
        pub fn $get(&self) -> $nt { $nt($crate::bytes::le32(self.buffer.as_ref(), $at)) }
        #[doc = concat!("Sets [`", stringify!($get), "`](Self::", stringify!($get), ").")]
        pub fn $set(&mut self, v: $nt) where T: AsMut<[u8]> { $crate::bytes::set_le32(self.buffer.as_mut(), $at, v.0) }
    };
}

/// The constructors every fixed-size view has: `new_unchecked`, `new_checked`, `check_len`,
/// `into_inner`, `as_bytes`. `$len` is the minimum buffer length.
macro_rules! view_basics {
    ($name:ident, $len:expr) => {
        /// Wraps a buffer without checking its length; getters panic on a short buffer.
        pub const fn new_unchecked(buffer: T) -> $name<T> {
            $name { buffer }
        }

        /// Wraps a buffer after [`check_len`](Self::check_len).
        pub fn new_checked(buffer: T) -> Result<$name<T>, $crate::WireError> {
            let v = $name::new_unchecked(buffer);
            v.check_len()?;
            Ok(v)
        }

        /// Checks the buffer is long enough for every accessor.
        pub fn check_len(&self) -> Result<(), $crate::WireError> {
            $crate::error::need($len, self.buffer.as_ref().len())
        }

        /// The wrapped buffer.
        pub fn into_inner(self) -> T {
            self.buffer
        }

        /// The bytes of the structure.
        pub fn as_bytes(&self) -> &[u8] {
            let b = self.buffer.as_ref();
            &b[..b.len().min($len)]
        }
    };
}

/// `Display` (and `defmt::Format` with the `defmt` feature) for a view: the Repr's one line,
/// or `NAME (error)` when the bytes do not parse. `$parse` is the Repr's
/// `parse(&View) -> Result<Repr, WireError>` function.
macro_rules! view_display {
    ($view:ident, $parse:path, $name:literal) => {
        impl<T: AsRef<[u8]>> ::core::fmt::Display for $view<T> {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                match self.check_len().and_then(|_| $parse(self)) {
                    Ok(r) => ::core::fmt::Display::fmt(&r, f),
                    Err(e) => write!(f, concat!($name, " ({})"), e),
                }
            }
        }

        #[cfg(feature = "defmt")]
        impl<T: AsRef<[u8]>> defmt::Format for $view<T> {
            fn format(&self, f: defmt::Formatter<'_>) {
                match self.check_len().and_then(|_| $parse(self)) {
                    Ok(r) => defmt::write!(f, "{}", r),
                    Err(e) => defmt::write!(f, "{=str} ({})", $name, e),
                }
            }
        }
    };
}
