package compare

import (
	"fmt"
	"math"
	"path/filepath"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"

	"github.com/vireo-im/vireo/bench/scenario"
)

// Plots draws the report's figures as PNG files beside it and returns their names by role.
func Plots(r Report, dir, name string) (map[string]string, error) {
	out := map[string]string{}
	save := func(role string, p *plot.Plot) error {
		f := name + "-" + role + ".png"
		if err := p.Save(7*vg.Inch, 4.5*vg.Inch, filepath.Join(dir, f)); err != nil {
			return fmt.Errorf("compare: plot %s: %w", role, err)
		}
		out[role] = f
		return nil
	}
	runs := r.Suite.runs
	for _, tls := range []bool{false, true} {
		if !runs("idle") {
			break
		}
		p, ok, err := idlePlot(r, tls)
		if err != nil {
			return nil, err
		}
		role := "idle_plain"
		if tls {
			role = "idle_tls"
		}
		if ok {
			if err := save(role, p); err != nil {
				return nil, err
			}
		}
	}
	if p, ok, err := loginPlot(r); err != nil {
		return nil, err
	} else if ok && runs("login") {
		if err := save("logins", p); err != nil {
			return nil, err
		}
	}
	if p, ok, err := msgPlot(r); err != nil {
		return nil, err
	} else if ok && runs("msg") {
		if err := save("messaging", p); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// idlePlot is server RSS against idle sessions, the median of the runs at each size.
func idlePlot(r Report, tls bool) (*plot.Plot, bool, error) {
	p := plot.New()
	p.Title.Text = "Server memory with idle sessions (plain TCP)"
	if tls {
		p.Title.Text = "Server memory with idle sessions (TLS 1.3)"
	}
	p.X.Label.Text = "authenticated idle sessions"
	p.Y.Label.Text = "server RSS (MiB)"
	p.Legend.Top, p.Legend.Left = true, true
	var args []any
	for _, sv := range r.Servers {
		runs := sv.IdlePlain
		if tls {
			runs = sv.IdleTLS
		}
		if len(runs) == 0 {
			continue
		}
		var xys plotter.XYs
		for i, pt := range runs[0].Points {
			var ys []float64
			for _, run := range runs {
				if i < len(run.Points) {
					ys = append(ys, float64(run.Points[i].Server.RSS)/(1<<20))
				}
			}
			xys = append(xys, plotter.XY{X: float64(pt.Sessions), Y: median(ys)})
		}
		slope := median(collect(runs, func(i scenario.IdleResult) float64 { return i.RSSPerSession }))
		args = append(args, fmt.Sprintf("%s: %s B/session", sv.Name, num(slope)), xys)
	}
	if len(args) == 0 {
		return nil, false, nil
	}
	if err := plotutil.AddLinePoints(p, args...); err != nil {
		return nil, false, err
	}
	// From zero, so that each server's fixed footprint shows beside its slope.
	p.X.Min, p.Y.Min = 0, 0
	p.Y.Max *= 1.15
	return p, true, nil
}

// loginPlot is median logins per second per server, plain and TLS side by side.
func loginPlot(r Report) (*plot.Plot, bool, error) {
	p := plot.New()
	p.Title.Text = "Login storm (SCRAM-SHA-1, median of runs)"
	p.Y.Label.Text = "logins per second"
	var plain, tls plotter.Values
	var names []string
	for _, sv := range r.Servers {
		names = append(names, sv.Name)
		plain = append(plain, median(collect(sv.LoginPlain, func(l scenario.LoginResult) float64 { return l.LoginsPerSecond })))
		tls = append(tls, median(collect(sv.LoginTLS, func(l scenario.LoginResult) float64 { return l.LoginsPerSecond })))
	}
	if len(names) == 0 {
		return nil, false, nil
	}
	w := vg.Points(28)
	for i, x := range []struct {
		name string
		v    plotter.Values
	}{{"plain TCP", plain}, {"TLS 1.3", tls}} {
		bc, err := plotter.NewBarChart(x.v, w)
		if err != nil {
			return nil, false, err
		}
		bc.Color = plotutil.Color(i)
		bc.LineStyle.Width = 0
		bc.Offset = w * vg.Length(2*i-1) / 2
		p.Add(bc)
		p.Legend.Add(x.name, bc)
	}
	p.Legend.Top = true
	p.Y.Min = 0
	p.Y.Max *= 1.15
	p.NominalX(names...)
	return p, true, nil
}

// msgPlot is p99 latency against delivered rate for every step of each server's median run.
func msgPlot(r Report) (*plot.Plot, bool, error) {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("One-to-one messaging, %d online users (median run)", r.Suite.Users)
	p.X.Label.Text = "delivered messages per second"
	p.Y.Label.Text = "p99 delivery latency (ms)"
	p.X.Scale, p.Y.Scale = plot.LogScale{}, plot.LogScale{}
	p.X.Tick.Marker, p.Y.Tick.Marker = plot.LogTicks{Prec: -1}, plot.LogTicks{Prec: -1}
	p.Legend.Top, p.Legend.Left = true, true
	var args []any
	for _, sv := range r.Servers {
		mi := medianRun(bestOf(sv, r.Suite.P99LimitMs))
		if mi < 0 {
			continue
		}
		steps := slices.Clone(sv.Search[mi])
		slices.SortFunc(steps, func(a, b scenario.MsgResult) int { return a.OfferedRate - b.OfferedRate })
		var xys plotter.XYs
		for _, m := range steps {
			if m.DeliveredPerSec <= 0 {
				continue
			}
			xys = append(xys, plotter.XY{X: m.DeliveredPerSec, Y: math.Max(m.P99ms, 0.1)})
		}
		if len(xys) > 0 {
			args = append(args, sv.Name, xys)
		}
	}
	if len(args) == 0 {
		return nil, false, nil
	}
	if err := plotutil.AddLinePoints(p, args...); err != nil {
		return nil, false, err
	}
	limit, err := plotter.NewLine(plotter.XYs{{X: p.X.Min, Y: r.Suite.P99LimitMs}, {X: p.X.Max, Y: r.Suite.P99LimitMs}})
	if err != nil {
		return nil, false, err
	}
	limit.Dashes = []vg.Length{vg.Points(4), vg.Points(4)}
	// Room above the limit line for the legend.
	p.Y.Max = math.Max(p.Y.Max, 8*r.Suite.P99LimitMs)
	p.Add(limit)
	p.Legend.Add(fmt.Sprintf("p99 limit %.0f ms", r.Suite.P99LimitMs), limit)
	return p, true, nil
}
