package outbox

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// lease is one relay's claim to the outbox, kept in the database the outbox lives in. It
// only takes turns: the relay holding it sends, the others wait, so two relays do not fence
// each other at every step. Exactly-once never rests on it. A holder stopped past its lease
// may wake believing it still holds it, but the relay that took over has fenced its
// transactional id by then, and nothing it sends can commit.
type lease struct {
	db     *gorm.DB
	name   string
	holder string
	ttl    time.Duration
	now    func() time.Time
}

// claim takes the lease when it is free or ran out, or renews it for its holder, and
// reports whether this holder has it for ttl from now.
func (l lease) claim(ctx context.Context) (bool, error) {
	now := l.now().UnixMilli()
	res := l.db.WithContext(ctx).Exec(`INSERT INTO outbox_leases (name, holder, until_ms) VALUES (?, ?, ?)
ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until_ms = excluded.until_ms
WHERE outbox_leases.holder = excluded.holder OR outbox_leases.until_ms < ?`,
		l.name, l.holder, now+l.ttl.Milliseconds(), now)
	if res.Error != nil {
		return false, fmt.Errorf("claim outbox lease %s: %w", l.name, res.Error)
	}
	return res.RowsAffected == 1, nil
}

// release gives the lease up so that another relay need not wait for it to run out.
func (l lease) release(ctx context.Context) error {
	err := l.db.WithContext(ctx).Exec(`UPDATE outbox_leases SET until_ms = 0 WHERE name = ? AND holder = ?`, l.name, l.holder).Error
	if err != nil {
		return fmt.Errorf("release outbox lease %s: %w", l.name, err)
	}
	return nil
}
