//! Statistics over replicates: mean, sample standard deviation and a 95% confidence
//! interval from Student's t distribution.

use statrs::distribution::{ContinuousCDF, StudentsT};

/// Summary of one metric at one sweep point.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    /// Mean of the metric over the replicates.
    pub mean: f64,
    /// Sample standard deviation (n − 1); `None` below two values.
    pub std: Option<f64>,
    /// 95% confidence interval of the mean (low, high); `None` below two values.
    pub ci95: Option<(f64, f64)>,
    /// How many values (replicates) went into it.
    pub n: usize,
}

/// The two-sided 95% quantile t_{0.975, df}.
pub fn t975(df: usize) -> f64 {
    StudentsT::new(0.0, 1.0, df as f64).map(|t| t.inverse_cdf(0.975)).unwrap_or(f64::NAN)
}

/// Summarises the values; `None` if there are none.
pub fn summarize(values: &[f64]) -> Option<Summary> {
    let n = values.len();
    if n == 0 {
        return None;
    }
    let mean = values.iter().sum::<f64>() / n as f64;
    if n < 2 {
        return Some(Summary { mean, std: None, ci95: None, n });
    }
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    let std = var.sqrt();
    let half = t975(n - 1) * std / (n as f64).sqrt();
    Some(Summary { mean, std: Some(std), ci95: Some((mean - half, mean + half)), n })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t_quantiles_match_the_tables() {
        // Two-sided 95% critical values from any t table.
        for (df, t) in [(1, 12.706), (2, 4.303), (4, 2.776), (9, 2.262), (29, 2.045), (1000, 1.962)] {
            assert!((t975(df) - t).abs() < 1e-3, "df {df}: {}", t975(df));
        }
    }

    #[test]
    fn interval_of_a_small_sample() {
        let s = summarize(&[1.0, 2.0, 3.0, 4.0, 5.0]).unwrap();
        assert_eq!(s.mean, 3.0);
        assert!((s.std.unwrap() - 2.5f64.sqrt()).abs() < 1e-12);
        let (lo, hi) = s.ci95.unwrap();
        let half = 2.776_445 * 2.5f64.sqrt() / 5f64.sqrt();
        assert!((lo - (3.0 - half)).abs() < 1e-5 && (hi - (3.0 + half)).abs() < 1e-5);
        assert_eq!(summarize(&[4.0]).unwrap().ci95, None);
        assert!(summarize(&[]).is_none());
    }
}
