//! SQL building blocks of the batched writes.

use sea_orm::sea_query::{CaseStatement, Expr, SimpleExpr};
use sea_orm::{ColumnTrait, Value};

/// `CASE WHEN id = … THEN … ELSE column END`: one column set row by row in
/// a single UPDATE; `None` when no row changes it.
pub fn per_row(
    id: impl ColumnTrait,
    column: impl ColumnTrait,
    values: Vec<(i64, Value)>,
) -> Option<SimpleExpr> {
    let mut values = values.into_iter();
    let (first, value) = values.next()?;
    let mut case = CaseStatement::new().case(id.eq(first), Expr::value(value));
    for (row, value) in values {
        case = case.case(id.eq(row), Expr::value(value));
    }
    Some(case.finally(Expr::col(column)).into())
}
