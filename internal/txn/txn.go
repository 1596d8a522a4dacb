// Package txn holds what the services share about the transaction a
// mutation runs in.
package txn

import (
	"context"

	"admit/ent"
)

// AfterCommit runs fn once the transaction in ctx commits, or now when
// there is none: events, wake-ups and announcements must never tell of
// rolled-back work.
func AfterCommit(ctx context.Context, fn func()) {
	tx := ent.TxFromContext(ctx)
	if tx == nil {
		fn()
		return
	}
	tx.OnCommit(func(next ent.Committer) ent.Committer {
		return ent.CommitFunc(func(ctx context.Context, tx *ent.Tx) error {
			if err := next.Commit(ctx, tx); err != nil {
				return err
			}
			fn()
			return nil
		})
	})
}
