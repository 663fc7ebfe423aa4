package mlflowclient

import (
	"context"
	"iter"
)

// Page is one page of a search; NextPageToken is "" on the last page.
type Page[T any] struct {
	Items         []T
	NextPageToken string
}

// all turns a page function into an iterator that follows page tokens until
// the last page, stopping at the first error (yielded once) or when the
// caller breaks.
func all[T any](ctx context.Context, first string, fetch func(ctx context.Context, token string) (*Page[T], error)) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		token := first
		for {
			p, err := fetch(ctx, token)
			if err != nil {
				var zero T
				yield(zero, err)
				return
			}
			for _, it := range p.Items {
				if !yield(it, nil) {
					return
				}
			}
			if p.NextPageToken == "" || p.NextPageToken == token {
				return
			}
			token = p.NextPageToken
		}
	}
}

// Collect drains an iterator into a slice, stopping at the first error.
func Collect[T any](seq iter.Seq2[T, error]) ([]T, error) {
	var out []T
	for v, err := range seq {
		if err != nil {
			return out, err
		}
		out = append(out, v)
	}
	return out, nil
}
