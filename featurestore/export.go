package featurestore

import (
	"context"
	"fmt"
	"time"
)

// Export reads back everything a dataset import writes — tools,
// capabilities, experiences and queries — so WriteDir can write it out in the
// interchange format.
func Export(ctx context.Context, s Store) (*Dataset, error) {
	var (
		d   Dataset
		err error
	)
	if d.Tools, err = s.Tools(ctx); err != nil {
		return nil, fmt.Errorf("export tools: %w", err)
	}
	if d.Capabilities, err = s.Capabilities(ctx); err != nil {
		return nil, fmt.Errorf("export capabilities: %w", err)
	}
	// All of time: experiences are stored in UTC from the Unix epoch on.
	if d.Experiences, err = s.ExperiencesBetween(ctx, time.Unix(0, 0).UTC(), time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)); err != nil {
		return nil, fmt.Errorf("export experiences: %w", err)
	}
	if d.Queries, err = s.Queries(ctx); err != nil {
		return nil, fmt.Errorf("export queries: %w", err)
	}
	return &d, nil
}
