def test_spec_loads():
    from mlplatform.lib.pipelines import load_spec

    assert load_spec("flight_delay").label.name == "delayed"
