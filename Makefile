# The two commands a new user needs: `make run` and `make test`. Both set everything up themselves.
.PHONY: run test setup sample wheel clean

run:  ## set up, write the sample corpus, run the pipeline in local mode, print the summary
	scripts/setup.sh
	.venv/bin/python scripts/make_sample.py --out data/sample
	.venv/bin/refinery run --config conf/local.yaml

test:  ## set up with every extra and run the test suite
	scripts/setup.sh ml,test
	.venv/bin/python -m pytest $(PYTEST_ARGS)

sample:
	.venv/bin/python scripts/make_sample.py --out data/sample

wheel:  ## the artifact spark-submit ships with --py-files
	.venv/bin/python -m pip wheel --no-deps -w dist .

clean:
	rm -rf lake data/sample dist build *.egg-info
