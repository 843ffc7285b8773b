import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from pydantic import BaseModel

from recsage.llm import ScriptedBackend, structured
from recsage.llm.langchain_adapter import LangChainBackend, RecsageChatModel


class Tags(BaseModel):
    topics: list[str]


def test_recsage_backend_as_langchain_model_with_structured_output():
    model = RecsageChatModel(backend=ScriptedBackend(lambda m: '{"topics": ["tools"]}'))
    assert model.invoke("hi").content == '{"topics": ["tools"]}'
    assert model.with_structured_output(Tags).invoke("tag this") == Tags(topics=["tools"])


def test_langchain_model_as_recsage_backend():
    backend = LangChainBackend(FakeListChatModel(responses=['{"topics": ["a", "b"]}']))
    r = structured(backend, [[{"role": "user", "content": "x"}]], Tags)[0]
    assert r.ok and r.value.topics == ["a", "b"]


@pytest.mark.slow
def test_structured_output_through_langchain_on_the_real_model(small_llm):
    model = RecsageChatModel(backend=small_llm, max_tokens=64)
    out = model.with_structured_output(Tags).invoke("Give two topics for: cordless drill with two batteries")
    assert isinstance(out, Tags) and out.topics
