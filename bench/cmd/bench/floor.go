package main

import "fmt"

func (b *bencher) floor() error {
	fmt.Println("  (e) floor: not yet")
	return nil
}
