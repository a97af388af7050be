//! The enumerated values of standard profile fields as Rust types: [`Gender`]
//! (`Tag_Profile_IM_Gender`), [`AllowType`] (`Tag_Profile_IM_AllowType`) and
//! [`AdminForbidType`] (`Tag_Profile_IM_AdminForbidType`), serialized as the vendor's strings.
//!
//! For callers that want types instead of strings (the Rust client). The server validates values
//! against [`crate::schema`]'s tables, which these mirror (a test keeps them equal). What must not
//! live here: validation rules or limits — [`crate::schema`] owns them.

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! wire_enum {
    ($(#[$m:meta])* $name:ident, $table:path { $( $(#[$vm:meta])* $variant:ident = $wire:literal, )* }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
        pub enum $name {
            $( $(#[$vm])* #[serde(rename = $wire)] $variant, )*
        }

        impl $name {
            /// Every value, the default first (the order of the schema's table).
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            /// The vendor's string.
            pub fn as_str(self) -> &'static str {
                match self { $( $name::$variant => $wire, )* }
            }

            /// Parses the vendor's string.
            pub fn parse(s: &str) -> Option<Self> {
                match s { $( $wire => Some($name::$variant), )* _ => None }
            }

            #[cfg(test)]
            fn table() -> &'static [&'static str] {
                $table
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

wire_enum! {
    /// `Tag_Profile_IM_Gender`.
    Gender, crate::schema::GENDER_VALUES {
        /// `Gender_Type_Unknown` (the default).
        #[default]
        Unknown = "Gender_Type_Unknown",
        /// `Gender_Type_Female`.
        Female = "Gender_Type_Female",
        /// `Gender_Type_Male`.
        Male = "Gender_Type_Male",
    }
}

wire_enum! {
    /// `Tag_Profile_IM_AllowType`: how friend requests to the user are handled.
    AllowType, crate::schema::ALLOW_TYPE_VALUES {
        /// `AllowType_Type_NeedConfirm` (the default).
        #[default]
        NeedConfirm = "AllowType_Type_NeedConfirm",
        /// `AllowType_Type_AllowAny`.
        AllowAny = "AllowType_Type_AllowAny",
        /// `AllowType_Type_DenyAny`.
        DenyAny = "AllowType_Type_DenyAny",
    }
}

wire_enum! {
    /// `Tag_Profile_IM_AdminForbidType` (admin-only).
    AdminForbidType, crate::schema::ADMIN_FORBID_VALUES {
        /// `AdminForbid_Type_None` (the default).
        #[default]
        None = "AdminForbid_Type_None",
        /// `AdminForbid_Type_SendOut`.
        SendOut = "AdminForbid_Type_SendOut",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_enums_mirror_the_schema_tables_in_order() {
        fn check<T: Copy + Default + PartialEq + fmt::Debug>(
            all: &[T],
            table: &[&str],
            as_str: fn(T) -> &'static str,
        ) {
            let names: Vec<&str> = all.iter().map(|v| as_str(*v)).collect();
            assert_eq!(names, table);
            assert_eq!(all[0], T::default());
        }
        check(Gender::ALL, Gender::table(), Gender::as_str);
        check(AllowType::ALL, AllowType::table(), AllowType::as_str);
        check(
            AdminForbidType::ALL,
            AdminForbidType::table(),
            AdminForbidType::as_str,
        );
        assert_eq!(
            serde_json::to_string(&Gender::Male).unwrap(),
            "\"Gender_Type_Male\""
        );
        assert_eq!(
            AllowType::parse("AllowType_Type_DenyAny"),
            Some(AllowType::DenyAny)
        );
    }
}
