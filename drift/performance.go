package drift

import (
	"context"
	"fmt"
)

func performance(ctx context.Context, s Signal, prod Dataset, metrics []chosen) ([]Result, error) {
	return nil, fmt.Errorf("%s: not available", s.Type)
}

func attribution(s Signal, metrics []chosen) ([]Result, error) {
	return nil, fmt.Errorf("%s: not available", s.Type)
}
