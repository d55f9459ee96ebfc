//! Range checks that name the offending field (answered as 422).

use crate::error::ApiError;

/// Checks `min <= value <= max` for a named field.
pub fn in_range<T>(field: &str, value: T, min: T, max: T) -> Result<(), ApiError>
where
    T: PartialOrd + std::fmt::Display + Copy,
{
    if value < min || value > max {
        return Err(ApiError::invalid_field(
            field,
            format!("must be between {min} and {max}, got {value}"),
        ));
    }
    Ok(())
}

/// Checks a float is finite and in range (NaN fails every comparison, so say so).
pub fn in_range_f32(field: &str, value: f32, min: f32, max: f32) -> Result<(), ApiError> {
    if !value.is_finite() {
        return Err(ApiError::invalid_field(field, "must be a finite number"));
    }
    in_range(field, value, min, max)
}

/// Checks a text field holds something other than white space.
pub fn non_empty(field: &str, value: &str) -> Result<(), ApiError> {
    if value.trim().is_empty() {
        return Err(ApiError::invalid_field(field, "must not be empty"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_names_field_and_bounds() {
        let e = in_range("max_tokens", 0u32, 1, 4096).unwrap_err();
        assert_eq!(e.status, 422);
        assert!(e.message.contains("max_tokens") && e.message.contains("4096"));
        assert!(in_range("max_tokens", 4096u32, 1, 4096).is_ok());
    }

    #[test]
    fn nan_temperature_is_rejected() {
        assert!(in_range_f32("temperature", f32::NAN, 0.0, 2.0).is_err());
        assert!(in_range_f32("temperature", 2.5, 0.0, 2.0).is_err());
        assert!(in_range_f32("temperature", 0.0, 0.0, 2.0).is_ok());
    }

    #[test]
    fn blank_is_empty() {
        assert!(non_empty("prompt", " \n").is_err());
        assert!(non_empty("prompt", "x").is_ok());
    }
}
