//! The 12 standard `Tag_Profile_IM_*` fields (spec §1.2): their names, kinds, enum values and
//! byte limits. Fixed by the vendor; nothing here is configurable.

use super::{ProfileValue, MAX_STRING_BYTES};

/// One of the 12 standard profile fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[allow(missing_docs)]
pub enum StandardTag {
    Nick,
    Gender,
    BirthDay,
    Location,
    SelfSignature,
    AllowType,
    Language,
    Image,
    MsgSettings,
    AdminForbidType,
    Level,
    Role,
}

/// What values a standard field takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StandardKind {
    /// A UTF-8 string of at most `max` bytes.
    Text {
        /// Byte limit.
        max: usize,
    },
    /// One of a fixed set of strings; the first is the default.
    Enum(&'static [&'static str]),
    /// An unsigned 32-bit integer; default 0.
    U32,
}

/// Values of `Tag_Profile_IM_Gender`; the first is the default.
pub const GENDER_VALUES: &[&str] = &[
    "Gender_Type_Unknown",
    "Gender_Type_Female",
    "Gender_Type_Male",
];
/// Values of `Tag_Profile_IM_AllowType`; the first is the default.
pub const ALLOW_TYPE_VALUES: &[&str] = &[
    "AllowType_Type_NeedConfirm",
    "AllowType_Type_AllowAny",
    "AllowType_Type_DenyAny",
];
/// Values of `Tag_Profile_IM_AdminForbidType`; the first is the default.
pub const ADMIN_FORBID_VALUES: &[&str] = &["AdminForbid_Type_None", "AdminForbid_Type_SendOut"];
/// Byte limit of `Tag_Profile_IM_Location` (spec §1.2: 16, the current vendor figure).
pub const LOCATION_MAX_BYTES: usize = 16;

impl StandardTag {
    /// All standard tags, in the vendor's table order.
    pub const ALL: [StandardTag; 12] = [
        StandardTag::Nick,
        StandardTag::Gender,
        StandardTag::BirthDay,
        StandardTag::Location,
        StandardTag::SelfSignature,
        StandardTag::AllowType,
        StandardTag::Language,
        StandardTag::Image,
        StandardTag::MsgSettings,
        StandardTag::AdminForbidType,
        StandardTag::Level,
        StandardTag::Role,
    ];

    /// The full wire name, e.g. `Tag_Profile_IM_Nick`.
    pub fn name(self) -> &'static str {
        match self {
            StandardTag::Nick => "Tag_Profile_IM_Nick",
            StandardTag::Gender => "Tag_Profile_IM_Gender",
            StandardTag::BirthDay => "Tag_Profile_IM_BirthDay",
            StandardTag::Location => "Tag_Profile_IM_Location",
            StandardTag::SelfSignature => "Tag_Profile_IM_SelfSignature",
            StandardTag::AllowType => "Tag_Profile_IM_AllowType",
            StandardTag::Language => "Tag_Profile_IM_Language",
            StandardTag::Image => "Tag_Profile_IM_Image",
            StandardTag::MsgSettings => "Tag_Profile_IM_MsgSettings",
            StandardTag::AdminForbidType => "Tag_Profile_IM_AdminForbidType",
            StandardTag::Level => "Tag_Profile_IM_Level",
            StandardTag::Role => "Tag_Profile_IM_Role",
        }
    }

    /// Looks a wire name up (case-sensitive, as the vendor's parameter names are).
    pub fn from_name(name: &str) -> Option<StandardTag> {
        StandardTag::ALL.into_iter().find(|t| t.name() == name)
    }

    /// What values the field takes.
    pub fn kind(self) -> StandardKind {
        match self {
            StandardTag::Nick | StandardTag::SelfSignature | StandardTag::Image => {
                StandardKind::Text {
                    max: MAX_STRING_BYTES,
                }
            }
            StandardTag::Location => StandardKind::Text {
                max: LOCATION_MAX_BYTES,
            },
            StandardTag::Gender => StandardKind::Enum(GENDER_VALUES),
            StandardTag::AllowType => StandardKind::Enum(ALLOW_TYPE_VALUES),
            StandardTag::AdminForbidType => StandardKind::Enum(ADMIN_FORBID_VALUES),
            StandardTag::BirthDay
            | StandardTag::Language
            | StandardTag::MsgSettings
            | StandardTag::Level
            | StandardTag::Role => StandardKind::U32,
        }
    }

    /// The value `portrait_get` returns for a field that was never set.
    pub fn default_value(self) -> ProfileValue {
        match self.kind() {
            StandardKind::Text { .. } => ProfileValue::Str(String::new()),
            StandardKind::Enum(values) => ProfileValue::Str(values[0].to_owned()),
            StandardKind::U32 => ProfileValue::Int(0),
        }
    }

    /// Whether ordinary users may write this field from a client (only `AdminForbidType` is
    /// admin-only, spec §1.2).
    pub fn user_writable(self) -> bool {
        self != StandardTag::AdminForbidType
    }
}
